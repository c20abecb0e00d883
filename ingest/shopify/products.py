"""Shopify's REST product and collection payloads (webhooks products/*, collections/*) as
Nova's Product and Collection records, and smart-collection rules evaluated by Nova itself."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ingest import ids
from ingest.records import Collection, Product, Variant

GIFT_CARD_TYPE = "gift card"


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def money(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a price: {value!r}") from None
    if amount < 0:
        raise ValueError(f"negative price: {value!r}")
    return amount


def tags(value: Any) -> tuple[str, ...]:
    """REST sends tags as one comma-separated string; GraphQL and CSV as a list or a string."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(dict.fromkeys(t.strip() for t in items if isinstance(t, str) and t.strip()))


def variant_available(tracked: bool, policy: str, quantity: int | None) -> bool:
    """Shopify sells an untracked variant always, a tracked one while in stock or when it may
    be oversold (inventory_policy "continue")."""
    return not tracked or policy == "continue" or (quantity or 0) > 0


def product_from_rest(
    payload: dict[str, Any], collections: Iterable[str] = (), previous: Product | None = None
) -> Product:
    """A products/create|update webhook body (Shopify's REST Product) as a Product.

    `collections` are the product's current collection ids, which the payload does not carry.
    `previous` is the stored product: newer API versions leave `inventory_management` and
    `inventory_quantity` out of variants, and a field that is absent is unknown, not "untracked"
    or "none in stock", so the stored value stands (and a variant never seen before counts as
    tracked, which keeps an unsellable product out of recommendations rather than in).
    """
    known = {v.id: v for v in previous.variants} if previous else {}
    variants = []
    for v in payload.get("variants") or []:
        variant_id = ids.variant_id(v["id"])
        old = known.get(variant_id)
        if "inventory_management" in v:
            tracked = v["inventory_management"] not in (None, "")
        else:
            tracked = old.tracked if old else True
        quantity = v.get("inventory_quantity")
        if quantity is None and old is not None:
            quantity = old.inventory_quantity
        policy = (v.get("inventory_policy") or "deny").lower()
        variants.append(
            Variant(
                id=variant_id,
                title=v.get("title"),
                sku=v.get("sku") or None,
                price=money(v.get("price")) or Decimal(0),
                compare_at_price=money(v.get("compare_at_price")),
                available=variant_available(tracked, policy, quantity),
                inventory_quantity=quantity,
                inventory_policy=policy,
                tracked=tracked,
                inventory_item_id=(
                    ids.shopify_id(v["inventory_item_id"], "InventoryItem")
                    if v.get("inventory_item_id")
                    else (old.inventory_item_id if old else None)
                ),
                option_values=tuple(
                    str(v[k]) for k in ("option1", "option2", "option3") if v.get(k) is not None
                ),
            )
        )
    image = payload.get("image") or next(iter(payload.get("images") or []), None)
    product_type = payload.get("product_type") or None
    return Product(
        id=ids.product_id(payload["id"]),
        title=payload.get("title") or "",
        handle=payload.get("handle") or "",
        vendor=payload.get("vendor") or None,
        product_type=product_type,
        tags=tags(payload.get("tags")),
        collections=tuple(collections),
        status=(payload.get("status") or "active").lower(),
        published_at=_dt(payload.get("published_at")),
        created_at=_dt(payload.get("created_at")),
        updated_at=_dt(payload.get("updated_at")),
        is_gift_card=bool(payload.get("gift_card"))
        or (product_type or "").strip().lower() == GIFT_CARD_TYPE,
        image_url=image.get("src") if isinstance(image, dict) else None,
        variants=tuple(variants),
    )


def collection_from_rest(payload: dict[str, Any]) -> Collection:
    """A collections/create|update body. Smart collections carry `rules` and `disjunctive`."""
    rules = tuple(
        (str(r.get("column", "")), str(r.get("relation", "")), str(r.get("condition", "")))
        for r in payload.get("rules") or []
    )
    return Collection(
        id=ids.shopify_id(payload["id"], "Collection"),
        handle=payload.get("handle") or "",
        title=payload.get("title") or "",
        kind="smart" if "rules" in payload else "custom",
        rules=rules,
        disjunctive=bool(payload.get("disjunctive")),
        published=payload.get("published_at") is not None,
        updated_at=_dt(payload.get("updated_at")),
    )


def matches(collection: Collection, product: Product) -> bool:
    """Whether a smart collection's rules select the product (Shopify's rule columns and
    relations; variant columns match when any variant does)."""
    if collection.kind != "smart" or not collection.rules:
        return False
    results = (_rule(product, *rule) for rule in collection.rules)
    return any(results) if collection.disjunctive else all(results)


# Negative relations must hold for every value of a many-valued column (tags, variants): "tag
# not_contains sale" must not select a product tagged both "sale" and "new".
_NEGATIVE = frozenset({"not_equals", "not_contains", "is_not_set"})


def _rule(product: Product, column: str, relation: str, condition: str) -> bool:
    values = _column(product, column)
    if not values:
        return False
    test = all if relation in _NEGATIVE else any
    return test(_relation(value, relation, condition) for value in values)


def _column(product: Product, column: str) -> list[Any]:
    if column == "title":
        return [product.title]
    if column == "type":
        return [product.product_type or ""]
    if column == "vendor":
        return [product.vendor or ""]
    if column == "tag":
        return list(product.tags) or [""]
    variants = product.variants
    if column == "variant_price":
        return [v.price for v in variants]
    if column == "variant_compare_at_price":
        return [v.compare_at_price for v in variants]
    if column == "variant_inventory":
        return [v.inventory_quantity or 0 for v in variants]
    if column == "variant_title":
        return [v.title or "" for v in variants]
    if column == "is_price_reduced":
        return [bool(v.compare_at_price and v.compare_at_price > v.price) for v in variants]
    return []  # a column Nova does not know selects nothing rather than everything


def _relation(value: Any, relation: str, condition: str) -> bool:
    if isinstance(value, bool):
        # is_price_reduced: Shopify's relations are is_set / is_not_set (a flag, not a value).
        if relation in ("is_set", "is_not_set"):
            return value == (relation == "is_set")
        return value == (condition.strip().lower() == "true")
    if relation in ("is_set", "is_not_set"):
        return (value not in (None, "")) == (relation == "is_set")
    if value is None:
        return False
    if isinstance(value, Decimal | int):
        target = _number(condition)
        if target is None:
            return False
        return {
            "equals": value == target,
            "not_equals": value != target,
            "greater_than": value > target,
            "less_than": value < target,
        }.get(relation, False)
    text, cond = str(value).lower(), condition.lower()
    return {
        "equals": text == cond,
        "not_equals": text != cond,
        "starts_with": text.startswith(cond),
        "ends_with": text.endswith(cond),
        "contains": cond in text,
        "not_contains": cond not in text,
    }.get(relation, False)


def _number(text: str) -> Decimal | None:
    """A rule's numeric condition; one Nova cannot read selects nothing instead of failing the
    whole webhook (a stock rule may compare with a negative number, unlike a price)."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
