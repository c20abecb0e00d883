"""Products in the shape of Shopify's Ajax product-recommendations API (prices in the
currency's minor unit; a product URL carrying pr_* tracking parameters)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import pydantic_core

from ingest.records import Product

# ISO 4217 currencies whose minor unit is not the hundredth.
_ZERO_DECIMALS = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "UYI",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
_THREE_DECIMALS = frozenset("BHD IQD JOD KWD LYD OMR TND".split())  # noqa: SIM905


def minor_units_factor(currency: str) -> int:
    code = currency.upper()
    return 1 if code in _ZERO_DECIMALS else 1000 if code in _THREE_DECIMALS else 100


def minor(amount: Decimal | None, factor: int) -> int | None:
    return None if amount is None else int((amount * factor).to_integral_value())


def product_json(product: Product, factor: int) -> dict[str, Any]:
    """Everything but `url`, which carries per-response tracking parameters."""
    variants = [v for v in product.variants]
    prices = [minor(v.price, factor) or 0 for v in variants] or [0]
    compares = [minor(v.compare_at_price, factor) or 0 for v in variants] or [0]
    options = [
        {"name": f"Option{i + 1}", "position": i + 1}
        for i in range(max((len(v.option_values) for v in variants), default=0))
    ]
    return {
        "id": int(product.id),
        "title": product.title,
        "handle": product.handle,
        "description": None,
        "published_at": product.published_at.isoformat() if product.published_at else None,
        "created_at": product.created_at.isoformat() if product.created_at else None,
        "vendor": product.vendor,
        "type": product.product_type,
        "tags": list(product.tags),
        "price": min(prices),
        "price_min": min(prices),
        "price_max": max(prices),
        "available": product.available,
        "price_varies": min(prices) != max(prices),
        "compare_at_price": min(compares) or None,
        "compare_at_price_min": min(compares),
        "compare_at_price_max": max(compares),
        "compare_at_price_varies": min(compares) != max(compares),
        "variants": [
            {
                "id": int(v.id),
                "title": v.title or "Default Title",
                "option1": v.option_values[0] if len(v.option_values) > 0 else None,
                "option2": v.option_values[1] if len(v.option_values) > 1 else None,
                "option3": v.option_values[2] if len(v.option_values) > 2 else None,
                "sku": v.sku or "",
                "requires_shipping": True,
                "taxable": True,
                "featured_image": None,
                "available": v.available,
                "name": f"{product.title} - {v.title}" if v.title else product.title,
                "public_title": v.title if v.title and v.title != "Default Title" else None,
                "options": list(v.option_values) or ["Default Title"],
                "price": minor(v.price, factor),
                "compare_at_price": minor(v.compare_at_price, factor),
                "inventory_management": "shopify" if v.tracked else None,
            }
            for v in variants
        ],
        "images": [product.image_url] if product.image_url else [],
        "featured_image": product.image_url,
        "options": options,
        "media": [],
    }


def product_path(handle: str) -> str:
    """A product's storefront path: fixed for a catalog version, so a shop's view keeps it."""
    return f"/products/{quote(handle)}"


class TrackedUrls:
    """The product URLs of one answer, with Shopify's recommendation tracking parameters, so
    Shopify's "Product recommendation conversion" report and Nova's analytics both see the
    click. What an answer's products share is formatted once, not once per product."""

    def __init__(self, *, ranking_id: str, ref_product_id: str | None, choice: str) -> None:
        # Ids, sources and ranking ids are URL-safe already; only the choice is free-form.
        self._choice = f"?pr_choice={quote(choice, safe='')}&pr_prod_strat="
        self._ranking = f"&pr_rec_id={ranking_id}&pr_rec_pid="
        self._ref = f"&pr_ref_pid={ref_product_id or ''}&pr_seq=uniform"

    def url(self, path: str, *, source: str, product_id: str) -> str:
        return f"{path}{self._choice}{source}{self._ranking}{product_id}{self._ref}"

    def json_pieces(self) -> tuple[bytes, bytes, bytes]:
        """The shared parts as JSON string content: a url inside a JSON string is
        path + choice + source + ranking + product id + ref, each escaped on its own (JSON
        escapes character by character), so an answer escapes the shared parts once."""
        return json_text(self._choice), json_text(self._ranking), json_text(self._ref)


@lru_cache(maxsize=1024)
def json_text(text: str) -> bytes:
    """`text` as the content of a JSON string (escaped, without the quotes)."""
    return pydantic_core.to_json(text)[1:-1]
