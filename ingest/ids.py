"""Shopify ids, normalised once at the edge.

Shopify speaks of the same product as `gid://shopify/Product/123`, `"123"` or `123`. Nova stores
the bare decimal string everywhere, so joins and lookups never have to guess.
"""

from __future__ import annotations

import re

# [0-9], not \d: \d also matches other scripts' digits, which would make "١٢٣" an id.
_GID = re.compile(r"gid://shopify/(?P<kind>[A-Za-z]+)/(?P<num>[0-9]{1,20})(?:\?.*)?")
_NUMERIC = re.compile(r"[0-9]{1,20}")
_SHOP = re.compile(r"[a-z0-9][a-z0-9-]{0,59}\.myshopify\.com")


def shopify_id(value: object, kind: str) -> str:
    """The bare numeric id of a Shopify object of `kind` ("Product", "ProductVariant", ...).

    Raises ValueError for anything else, including a GID of another kind: a variant id where a
    product id belongs is a client bug that must not silently become a different product.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a {kind} id, got a boolean")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"expected a positive {kind} id, got {value}")
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a {kind} id, got {type(value).__name__}")
    text = value.strip()
    if _NUMERIC.fullmatch(text):
        return _positive(text, kind)
    m = _GID.fullmatch(text)
    if m is None:
        raise ValueError(f"not a Shopify {kind} id: {value[:80]!r}")
    if m["kind"] != kind:
        raise ValueError(f"expected a {kind} id, got a {m['kind']} id")
    return _positive(m["num"], kind)


def _positive(digits: str, kind: str) -> str:
    number = digits.lstrip("0")
    if not number:
        raise ValueError(f"expected a positive {kind} id, got {digits}")
    return number


def gid_kind(value: object) -> str | None:
    """The object kind named by a GID, or None for plain ids."""
    if isinstance(value, str):
        m = _GID.fullmatch(value.strip())
        if m:
            return m["kind"]
    return None


def product_id(value: object) -> str:
    return shopify_id(value, "Product")


def variant_id(value: object) -> str:
    return shopify_id(value, "ProductVariant")


def shop_domain(value: str) -> str:
    """`Example.myshopify.com` and `https://example.myshopify.com/` are the same shop."""
    text = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if not _SHOP.fullmatch(text):
        raise ValueError(f"not a myshopify.com shop domain: {value[:80]!r}")
    return text
