"""Product URLs with Shopify's recommendation tracking parameters (deployments/ranking/
shopify_json.py): what a storefront link carries back to Shopify's report and Nova's analytics."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from pydantic_core import to_json

from deployments.ranking.shopify_json import TrackedUrls, json_text, product_path


@pytest.mark.parametrize(
    "handle", ["summer-tee", "summer tee", "café-crème", 'quote"d', "a?b&c=d#e", "日本"]
)
def test_the_path_survives_any_handle(handle: str) -> None:
    path = product_path(handle)
    assert path.isascii() and not any(c in path for c in ' "?&#')
    assert unquote(path) == f"/products/{handle}"


def test_every_tracking_parameter_of_one_answer() -> None:
    urls = TrackedUrls(ranking_id="r.0123abcd.exp-1.b", ref_product_id="11", choice="exp 1:b&c")
    first = urlsplit(urls.url(product_path("sock pack"), source="co_purchase", product_id="22"))
    second = urlsplit(urls.url(product_path("tee"), source="popular", product_id="33"))
    assert unquote(first.path) == "/products/sock pack" and second.path == "/products/tee"
    assert parse_qs(first.query) == {
        "pr_choice": ["exp 1:b&c"],  # free-form, so quoted whole
        "pr_prod_strat": ["co_purchase"],
        "pr_rec_id": ["r.0123abcd.exp-1.b"],
        "pr_rec_pid": ["22"],
        "pr_ref_pid": ["11"],
        "pr_seq": ["uniform"],
    }
    assert parse_qs(second.query)["pr_rec_pid"] == ["33"]
    assert parse_qs(second.query)["pr_prod_strat"] == ["popular"]


def test_no_viewed_product_leaves_the_reference_empty() -> None:
    url = TrackedUrls(ranking_id="r.1", ref_product_id=None, choice="nova").url(
        "/products/x", source="trending", product_id="5"
    )
    assert "&pr_ref_pid=&" in url
    assert parse_qs(urlsplit(url).query, keep_blank_values=True)["pr_ref_pid"] == [""]


@pytest.mark.parametrize(
    ("ranking_id", "choice", "source"),
    [
        ("r.0123abcd", "nova", "co_view"),
        ('r.0123abcd.exp"1.b\\c', 'exp "1":b\\c', 'odd"source'),  # quotes, backslashes
        ("r.0123abcd.é.ü", "日本:b\n", "tab\there"),  # non-ASCII, control characters
    ],
)
def test_a_url_put_together_from_escaped_pieces_is_the_escaped_url(
    ranking_id: str, choice: str, source: str
) -> None:
    # render() builds each product's url inside the answer's JSON from pieces escaped once per
    # answer or per catalog version; the result must be exactly the escaped whole url.
    urls = TrackedUrls(ranking_id=ranking_id, ref_product_id="11", choice=choice)
    path = product_path('café "crème"')
    choice_part, ranking_part, ref_part = urls.json_pieces()
    pieced = b"".join(
        (json_text(path), choice_part, json_text(source), ranking_part, b"22", ref_part)
    )
    assert b'"' + pieced + b'"' == to_json(urls.url(path, source=source, product_id="22"))
