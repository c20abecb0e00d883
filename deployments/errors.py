"""The one place domain errors become HTTP responses (Shopify's error shape)."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ingest.errors import (
    AlreadyExists,
    InvalidParameter,
    InvalidRequest,
    InvalidSignature,
    NotFound,
    NotSupported,
    NovaError,
    PayloadTooLarge,
    ProductNotFound,
    RateLimited,
    StoreUnavailable,
    UnknownShop,
)

_STATUS: list[tuple[type[NovaError], int, str]] = [
    (InvalidRequest, 400, "Bad request"),
    (UnknownShop, 401, "Unauthorized"),
    (InvalidSignature, 401, "Unauthorized"),
    (ProductNotFound, 404, "Product not found"),
    (NotFound, 404, "Not found"),
    (InvalidParameter, 422, "Invalid parameter error"),
    (AlreadyExists, 409, "Conflict"),
    (PayloadTooLarge, 413, "Payload too large"),
    (RateLimited, 429, "Too many requests"),
    (NotSupported, 501, "Not implemented"),
    (StoreUnavailable, 503, "Service unavailable"),
]


def error_response(status: int, message: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"status": status, "message": message, "description": description}, status_code=status
    )


def to_response(exc: NovaError) -> Response:
    for cls, status, message in _STATUS:
        if isinstance(exc, cls):
            response = error_response(status, message, str(exc))
            if isinstance(exc, RateLimited | StoreUnavailable):
                response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
            return response
    # A NovaError without a mapping is a bug here, not the client's fault: let it surface.
    raise exc


async def handle_nova_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, NovaError):
        raise exc
    return to_response(exc)
