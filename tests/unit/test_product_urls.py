"""Product URLs with Shopify's recommendation tracking parameters (deployments/ranking/
shopify_json.py): what a storefront link carries back to Shopify's report and Nova's analytics."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from support.catalog import product, view

from deployments.ranking.engine import Ranked, Result
from deployments.ranking.shopify_json import TrackedUrls, product_path
from deployments.recommendations_app import render


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
    ("experiment", "variant", "source"),
    [
        (None, None, "co_view"),
        ('exp"1', "b\\c", 'odd"source'),  # quotes, backslashes
        ("é", "日本\n", "tab\there"),  # non-ASCII, control characters
    ],
)
def test_an_answer_s_urls_are_the_tracked_urls(
    experiment: str | None, variant: str | None, source: str
) -> None:
    # render() writes each url into the answer's JSON from pieces escaped once per answer or
    # per catalog version, in TrackedUrls.url's order: read back, they must be its urls.
    handles = ['café "crème"', "back\\slash"]
    v = view([product(n + 1).model_copy(update={"handle": h}) for n, h in enumerate(handles)])
    rid = f"r.0123abcd.{experiment}.{variant}" if experiment else "r.0123abcd"
    reasons = [{"type": "source", "name": source}]
    result = Result(
        "related", rid, [Ranked(0, 1.0, reasons), Ranked(1, 0.5, reasons)], experiment, variant, 1
    )
    body = json.loads(render(v, result, "0123abcd"))
    choice = f"{experiment}:{variant}" if experiment else "nova"
    urls = TrackedUrls(ranking_id=rid, ref_product_id=v.products[1].id, choice=choice)
    assert [p["url"] for p in body["products"]] == [
        urls.url(product_path(h), source=source, product_id=v.products[n].id)
        for n, h in enumerate(handles)
    ]
