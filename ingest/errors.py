"""Named domain errors. deployments/errors.py is the one place they become HTTP responses."""

from __future__ import annotations


class NovaError(Exception):
    """Base of every error Nova raises on purpose."""


class InvalidRequest(NovaError):
    """The request as a whole is malformed (bad JSON, missing shop, events not a list)."""


class InvalidEvent(NovaError):
    """One event failed validation; the batch goes on without it."""


class UnknownShop(NovaError):
    """The shop does not exist or the ingest key does not match it."""


class InvalidSignature(NovaError):
    """A webhook's HMAC is missing or does not match the body under the app's secrets."""


class PayloadTooLarge(NovaError):
    """The body or the number of events is over the documented limit."""


class RateLimited(NovaError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limit exceeded; retry after {retry_after_s:.0f}s")
        self.retry_after_s = retry_after_s


class StoreUnavailable(NovaError):
    """A store could not be reached; nothing was acknowledged as durable."""

    def __init__(self, store: str, cause: BaseException | None = None) -> None:
        detail = f": {type(cause).__name__}: {cause}" if cause else ""
        super().__init__(f"{store} unavailable{detail}")
        self.store = store
        self.retry_after_s = 2.0


class AlreadyExists(NovaError):
    """Creating something that exists (answered 409)."""


class ShopExists(AlreadyExists):
    """A shop with this domain was created before."""


class NotFound(NovaError):
    """The requested object does not exist."""


class ProductNotFound(NotFound):
    """A recommendations request named a product that is not published in the shop."""


class InvalidParameter(NovaError):
    """A query parameter is missing or wrong (Shopify answers these with 422)."""


class NotSupported(NovaError):
    """A request Nova understands but does not handle yet (and must not pretend to)."""
