"""Privacy states (docs/privacy.md) and how a batch's consent maps onto them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class PrivacyState(StrEnum):
    OPTED_OUT = "opted_out"  # keep nothing about the visitor; anonymous aggregates at most
    PENDING = "pending"  # short-TTL session state only; promoted on consent, discarded otherwise
    GUEST = "guest"  # consented, anonymous: events keyed by Shopify's clientId
    AUTHENTICATED = "authenticated"  # consented and logged in: events linked to the customer

    @property
    def persists_events(self) -> bool:
        return self in (PrivacyState.GUEST, PrivacyState.AUTHENTICATED)

    @property
    def keeps_session(self) -> bool:
        return self is not PrivacyState.OPTED_OUT


class Consent(BaseModel):
    """The visitor's choices as the Customer Privacy API reports them; null means not yet given."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    analytics: bool | None = None
    marketing: bool | None = None
    preferences: bool | None = None
    sale_of_data: bool | None = Field(None, alias="saleOfData")


def privacy_state(
    consent: Consent | None, customer_id: str | None, *, require_consent: bool
) -> PrivacyState:
    """Only analytics consent matters: Nova is self-hosted by the merchant and neither markets
    to nor sells data about the visitor, so marketing and sale_of_data do not gate it."""
    analytics = consent.analytics if consent is not None else None
    if analytics is False:
        return PrivacyState.OPTED_OUT
    if analytics is None and require_consent:
        return PrivacyState.PENDING
    return PrivacyState.AUTHENTICATED if customer_id else PrivacyState.GUEST
