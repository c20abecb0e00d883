"""deployments/errors.py: the one place domain errors become HTTP responses."""

from __future__ import annotations

import json

import pytest
from starlette.requests import Request

from deployments.errors import error_response, handle_nova_error, to_response
from ingest import errors
from ingest.errors import (
    AlreadyExists,
    InvalidEvent,
    InvalidParameter,
    InvalidRequest,
    InvalidSignature,
    NotFound,
    NotSupported,
    NovaError,
    PayloadTooLarge,
    ProductNotFound,
    RateLimited,
    ShopExists,
    StoreUnavailable,
    UnknownShop,
)

CASES: list[tuple[NovaError, int, str]] = [
    (InvalidRequest("body must be a JSON object"), 400, "Bad request"),
    (UnknownShop("unknown shop or ingest key"), 401, "Unauthorized"),
    (InvalidSignature("X-Shopify-Hmac-Sha256 does not match"), 401, "Unauthorized"),
    (NotFound("no shop x"), 404, "Not found"),
    (ProductNotFound("No product with id 1 is published"), 404, "Product not found"),
    (InvalidParameter("A product_id value is missing"), 422, "Invalid parameter error"),
    (ShopExists("x.myshopify.com"), 409, "Conflict"),
    (AlreadyExists("experiment x exists"), 409, "Conflict"),
    (PayloadTooLarge("101 events"), 413, "Payload too large"),
    (RateLimited(0.3), 429, "Too many requests"),
    (NotSupported("customers/redact is not handled yet"), 501, "Not implemented"),
    (StoreUnavailable("redis"), 503, "Service unavailable"),
]


def all_subclasses(cls: type[NovaError]) -> set[type[NovaError]]:
    out: set[type[NovaError]] = set()
    for sub in cls.__subclasses__():
        out |= {sub, *all_subclasses(sub)}
    return out


@pytest.mark.parametrize(
    ("exc", "status", "message"), CASES, ids=[type(c[0]).__name__ for c in CASES]
)
def test_each_error_maps_to_its_status_and_shopify_shaped_body(
    exc: NovaError, status: int, message: str
) -> None:
    response = to_response(exc)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert json.loads(bytes(response.body)) == {
        "status": status,
        "message": message,
        "description": str(exc),
    }


def test_every_http_facing_error_is_mapped() -> None:
    """InvalidEvent is per event: the service reports it in the 202 body and never raises it."""
    defined = {c for c in all_subclasses(NovaError) if c.__module__ == errors.__name__}
    assert InvalidEvent in defined
    assert defined - {InvalidEvent} == {type(exc) for exc, _, _ in CASES}


def test_unmapped_error_is_raised_not_answered() -> None:
    with pytest.raises(InvalidEvent):
        to_response(InvalidEvent("bad id"))

    class Unmapped(NovaError):
        pass

    with pytest.raises(Unmapped):
        to_response(Unmapped("x"))


def test_subclass_of_a_mapped_error_gets_its_parent_status() -> None:
    class NoSuchWidget(NotFound):
        pass

    assert to_response(NoSuchWidget("w")).status_code == 404


@pytest.mark.parametrize(
    ("retry_after_s", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (2.5, "3")]
)
def test_rate_limited_retry_after_is_a_whole_number_of_seconds(
    retry_after_s: float, header: str
) -> None:
    response = to_response(RateLimited(retry_after_s))
    assert response.status_code == 429
    assert response.headers["retry-after"] == header
    assert int(response.headers["retry-after"]) >= 1


def test_store_unavailable_has_retry_after() -> None:
    response = to_response(StoreUnavailable("postgres", OSError("connection refused")))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    body = json.loads(bytes(response.body))
    assert body["description"] == "postgres unavailable: OSError: connection refused"


@pytest.mark.parametrize("exc", [c[0] for c in CASES if c[1] not in (429, 503)])
def test_other_errors_have_no_retry_after(exc: NovaError) -> None:
    assert "retry-after" not in to_response(exc).headers


def test_error_response_shape() -> None:
    response = error_response(422, "Unprocessable Entity", "limit must be 1..10")
    assert response.status_code == 422
    assert json.loads(bytes(response.body)) == {
        "status": 422,
        "message": "Unprocessable Entity",
        "description": "limit must be 1..10",
    }


def _request() -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": []})


async def test_handler_translates_nova_errors() -> None:
    response = await handle_nova_error(_request(), RateLimited(4.2))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"


async def test_handler_reraises_other_exceptions() -> None:
    with pytest.raises(KeyError):
        await handle_nova_error(_request(), KeyError("boom"))
