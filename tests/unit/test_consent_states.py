"""ingest/consent.py: which privacy state a batch's consent and customer id put a visitor in."""

from __future__ import annotations

import pytest

from ingest.consent import Consent, PrivacyState, privacy_state

# (analytics consent, customer id, merchant requires consent) -> state
TRUTH_TABLE: list[tuple[bool | None, str | None, bool, PrivacyState]] = [
    (False, None, True, PrivacyState.OPTED_OUT),
    (False, "77", True, PrivacyState.OPTED_OUT),
    (False, None, False, PrivacyState.OPTED_OUT),
    (False, "77", False, PrivacyState.OPTED_OUT),
    (None, None, True, PrivacyState.PENDING),
    (None, "77", True, PrivacyState.PENDING),
    (None, None, False, PrivacyState.GUEST),
    (None, "77", False, PrivacyState.AUTHENTICATED),
    (True, None, True, PrivacyState.GUEST),
    (True, "77", True, PrivacyState.AUTHENTICATED),
    (True, None, False, PrivacyState.GUEST),
    (True, "77", False, PrivacyState.AUTHENTICATED),
]


@pytest.mark.parametrize(("analytics", "customer", "required", "expected"), TRUTH_TABLE)
def test_privacy_state_truth_table(
    analytics: bool | None, customer: str | None, required: bool, expected: PrivacyState
) -> None:
    consent = Consent(analytics=analytics)
    assert privacy_state(consent, customer, require_consent=required) is expected


@pytest.mark.parametrize(
    ("customer", "required", "expected"),
    [
        (None, True, PrivacyState.PENDING),
        ("77", True, PrivacyState.PENDING),
        (None, False, PrivacyState.GUEST),
        ("77", False, PrivacyState.AUTHENTICATED),
    ],
)
def test_no_consent_object_is_consent_not_yet_given(
    customer: str | None, required: bool, expected: PrivacyState
) -> None:
    assert privacy_state(None, customer, require_consent=required) is expected


def test_empty_customer_id_is_no_customer() -> None:
    assert privacy_state(Consent(analytics=True), "", require_consent=True) is PrivacyState.GUEST


@pytest.mark.parametrize("other", [False, None])
def test_only_analytics_consent_matters(other: bool | None) -> None:
    consent = Consent(analytics=True, marketing=other, preferences=other, sale_of_data=other)
    assert privacy_state(consent, None, require_consent=True) is PrivacyState.GUEST
    denied = Consent(analytics=False, marketing=True, preferences=True, sale_of_data=True)
    assert privacy_state(denied, None, require_consent=True) is PrivacyState.OPTED_OUT


def test_consent_reads_shopify_and_python_spellings() -> None:
    assert Consent.model_validate({"saleOfData": False}).sale_of_data is False
    assert Consent.model_validate({"sale_of_data": True}).sale_of_data is True
    c = Consent.model_validate({"analytics": True, "marketing": False, "unknown": 1})
    assert (c.analytics, c.marketing, c.preferences, c.sale_of_data) == (True, False, None, None)


def test_consent_rejects_non_boolean_text() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Consent.model_validate({"analytics": "maybe"})


@pytest.mark.parametrize(
    ("state", "persists", "keeps_session"),
    [
        (PrivacyState.OPTED_OUT, False, False),
        (PrivacyState.PENDING, False, True),
        (PrivacyState.GUEST, True, True),
        (PrivacyState.AUTHENTICATED, True, True),
    ],
)
def test_what_each_state_may_keep(state: PrivacyState, persists: bool, keeps_session: bool) -> None:
    assert state.persists_events is persists
    assert state.keeps_session is keeps_session


def test_state_values_are_stable_strings() -> None:
    assert [s.value for s in PrivacyState] == ["opted_out", "pending", "guest", "authenticated"]
