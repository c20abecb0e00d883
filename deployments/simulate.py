"""A simulated storefront: a generated catalog and shoppers whose behaviour has known structure.

Used by `make demo`, the benchmarks and the end-to-end tests. The events are exactly what a
Shopify Web Pixel delivers (envelope, context, data paths of the standard events), including
checkout PII that Nova must drop. The structure is planted so later evaluations can check that
models find it: shoppers prefer two product types, popularity within a type is Zipf-like, and
each product whose type has a complement has one planted complement bought with it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ingest.records import Product, Variant
from ingest.shopify.products import variant_available

PRODUCT_TYPES: dict[str, tuple[int, int]] = {
    "T-Shirt": (15, 40),
    "Hoodie": (40, 90),
    "Jeans": (50, 120),
    "Sneakers": (60, 180),
    "Socks": (5, 20),
    "Cap": (15, 35),
    "Backpack": (40, 150),
    "Water Bottle": (10, 40),
    "Jacket": (80, 250),
    "Sunglasses": (20, 150),
    "Mug": (8, 25),
    "Notebook": (5, 20),
}
COMPLEMENTS = {
    "Sneakers": "Socks",
    "Jeans": "T-Shirt",
    "Hoodie": "Cap",
    "Backpack": "Water Bottle",
    "Jacket": "Cap",
    "Sunglasses": "Cap",
    "Mug": "Notebook",
}
VENDORS = [
    "Northwind",
    "Alder & Co",
    "Blue Fern",
    "Kestrel",
    "Mossgrove",
    "Pinecrest",
    "Quill",
    "Ridge",
]
TAGS = ["organic", "bestseller", "new", "sale", "summer", "winter", "unisex", "limited", "recycled"]
ADJECTIVES = ["Classic", "Everyday", "Trail", "Urban", "Heritage", "Lightweight", "Cozy", "Retro"]
COLOURS = ["Black", "White", "Navy", "Olive", "Sand", "Red", "Grey"]
USER_AGENTS = {
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Safari/604.1",
    "desktop": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
}
PRODUCT_ID_BASE = 7_100_000_000_000
VARIANT_ID_BASE = 42_000_000_000_000
INVENTORY_ITEM_ID_BASE = 49_000_000_000_000
COLLECTION_ID_BASE = 450_000_000_000


@dataclass
class Catalog:
    products: list[Product]
    by_type: dict[str, list[Product]]
    complement_of: dict[str, str]  # product id -> its planted complement's product id
    collections: dict[str, str]  # collection handle -> numeric id


def generate_catalog(n_products: int = 300, seed: int = 7, now: datetime | None = None) -> Catalog:
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    types = list(PRODUCT_TYPES)
    collections = {h: str(COLLECTION_ID_BASE + i) for i, h in enumerate(_collection_handles())}
    products: list[Product] = []
    for i in range(n_products):
        ptype = types[i % len(types)]
        low, high = PRODUCT_TYPES[ptype]
        price = Decimal(rng.randrange(low * 100, high * 100, 100)) / 100 + Decimal("0.99") - 1
        title = f"{rng.choice(ADJECTIVES)} {rng.choice(COLOURS)} {ptype} {i + 1}"
        tags = tuple(sorted(rng.sample(TAGS, rng.randint(1, 3))))
        created = now - timedelta(days=rng.randint(0, 365), hours=rng.randint(0, 23))
        handle_type = ptype.lower().replace(" ", "-")
        product_collections = [f"{handle_type}s", "all"]
        if "sale" in tags:
            product_collections.append("sale")
        if (now - created).days < 30:
            product_collections.append("new-arrivals")
        sold_out = rng.random() < 0.05
        n_variants = rng.randint(1, 3)
        pid = str(PRODUCT_ID_BASE + i)
        variants = tuple(_variant(rng, i, v, price, sold_out) for v in range(n_variants))
        products.append(
            Product(
                id=pid,
                title=title,
                handle=f"{handle_type}-{i + 1}",
                vendor=rng.choice(VENDORS),
                product_type=ptype,
                tags=tags,
                collections=tuple(collections[c] for c in product_collections),
                status="draft" if rng.random() < 0.03 else "active",
                published_at=created,
                created_at=created,
                updated_at=created,
                image_url=f"https://cdn.example.com/products/{handle_type}-{i + 1}.jpg",
                variants=variants,
            )
        )
    by_type: dict[str, list[Product]] = {t: [] for t in types}
    for p in products:
        by_type[p.product_type or ""].append(p)
    complement_of = {}
    for p in products:
        target = COMPLEMENTS.get(p.product_type or "")
        if target and by_type[target]:
            complement_of[p.id] = by_type[target][int(p.id) % len(by_type[target])].id
    return Catalog(products, by_type, complement_of, collections)


def _variant(rng: random.Random, i: int, v: int, price: Decimal, sold_out: bool) -> Variant:
    quantity = 0 if sold_out else rng.randint(1, 80)
    policy = "continue" if sold_out and rng.random() < 0.3 else "deny"
    title = ["S", "M", "L"][v]
    return Variant(
        id=str(VARIANT_ID_BASE + i * 10 + v),
        title=title,
        sku=f"NV-{i:04d}-{v}",
        price=price,
        # Shopify's rule, as the catalog will be read back from webhooks: a sold-out variant
        # that may be oversold ("continue") is still available.
        available=variant_available(True, policy, quantity),
        inventory_quantity=quantity,
        inventory_policy=policy,
        inventory_item_id=str(INVENTORY_ITEM_ID_BASE + i * 10 + v),
        option_values=(title,),
    )


def _collection_handles() -> list[str]:
    types = [t.lower().replace(" ", "-") + "s" for t in PRODUCT_TYPES]
    return [*types, "all", "sale", "new-arrivals"]


@dataclass
class Visitor:
    client_id: str
    tastes: tuple[str, str]
    device: str
    consent: dict[str, bool | None]
    customer_id: str | None
    # Pending visitors who accept the banner part-way through their session.
    consents_later: bool = False


@dataclass
class Shopper:
    """Generates pixel batches for a shop, deterministic for a seed."""

    shop: str
    catalog: Catalog
    seed: int = 11
    # Sessions start spread over `span` up to `end`, as concurrent shoppers over a day would.
    end: datetime = field(default_factory=lambda: datetime.now(UTC))
    span: timedelta = timedelta(hours=24)
    # Shares of visitors: consented (guest or logged in), pending, opted out.
    consent_mix: tuple[float, float, float] = (0.8, 0.12, 0.08)
    login_rate: float = 0.2
    # A pixel flushes every few events and when the page hides; the benchmark uses 20.
    events_per_batch: int = 5
    views_per_session: tuple[int, int] = (2, 12)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._clock = self.end - self.span
        self._sellable = {
            t: [p for p in ps if p.status == "active" and p.available]
            for t, ps in self.catalog.by_type.items()
        }

    def visitor(self) -> Visitor:
        rng = self._rng
        roll = rng.random()
        consented, pending, _ = self.consent_mix
        if roll < consented:
            analytics: bool | None = True
        elif roll < consented + pending:
            analytics = None
        else:
            analytics = False
        logged_in = analytics is True and rng.random() < self.login_rate
        return Visitor(
            client_id=str(uuid.UUID(int=rng.getrandbits(128))),
            tastes=tuple(rng.sample(list(PRODUCT_TYPES), 2)),  # type: ignore[arg-type]
            device=rng.choices(["mobile", "desktop", "tablet"], weights=[6, 3, 1])[0],
            consent={
                "analytics": analytics,
                "marketing": analytics,
                "preferences": analytics,
                "sale_of_data": analytics,
            },
            customer_id=str(6_200_000_000 + rng.randrange(10**6)) if logged_in else None,
            consents_later=analytics is None and rng.random() < 0.5,
        )

    def batches(self, n_visitors: int) -> Iterator[dict[str, Any]]:
        """Every visitor's session, as the batches their pixel would post."""
        # A session lasts minutes; keep its last events in the past at the end of the span.
        usable = max(self.span - timedelta(hours=1), self.span / 2)
        for i in range(n_visitors):
            self._clock = self.end - self.span + usable * (i / max(n_visitors, 1))
            yield from self.session(self.visitor())

    def session(self, v: Visitor) -> Iterator[dict[str, Any]]:
        events = self._session_events(v)
        consent = dict(v.consent)
        for start in range(0, len(events), self.events_per_batch):
            if v.consents_later and start >= len(events) // 2:
                consent = {k: True for k in consent}
            batch: dict[str, Any] = {
                "shop": self.shop,
                "events": events[start : start + self.events_per_batch],
                "consent": consent,
            }
            if v.customer_id:
                batch["customerId"] = v.customer_id
            yield batch

    def _session_events(self, v: Visitor) -> list[dict[str, Any]]:
        rng = self._rng
        out = [self._event(v, "page_viewed", {}, path="/")]
        cart: list[Any] = []
        ptype = v.tastes[0]
        handle = ptype.lower().replace(" ", "-") + "s"
        out.append(
            self._event(
                v,
                "collection_viewed",
                {
                    "collection": {
                        "id": self.catalog.collections[handle],
                        "title": ptype + "s",
                        "productVariants": [self._variant(p) for p in self._sellable[ptype][:12]],
                    }
                },
                path=f"/collections/{handle}",
            )
        )
        if rng.random() < 0.15:
            found = self._sellable[v.tastes[1]][:8]
            out.append(
                self._event(
                    v,
                    "search_submitted",
                    {
                        "searchResult": {
                            "query": v.tastes[1].lower(),
                            "productVariants": [self._variant(p) for p in found],
                        }
                    },
                    path="/search",
                )
            )
        for _ in range(rng.randint(*self.views_per_session)):
            product = self._pick(v.tastes[0] if rng.random() < 0.7 else v.tastes[1])
            out.append(
                self._event(
                    v,
                    "product_viewed",
                    {"productVariant": self._variant(product)},
                    path=f"/products/{product.handle}",
                )
            )
            if rng.random() < 0.15:
                cart.append(product)
                out.append(
                    self._event(v, "product_added_to_cart", {"cartLine": self._line(product)})
                )
                complement = self.catalog.complement_of.get(product.id)
                if complement and rng.random() < 0.6:
                    other = next(p for p in self.catalog.products if p.id == complement)
                    if other.available and other.status == "active":
                        cart.append(other)
                        out.append(
                            self._event(v, "product_added_to_cart", {"cartLine": self._line(other)})
                        )
        if cart and rng.random() < 0.1:
            removed = cart.pop()
            out.append(
                self._event(v, "product_removed_from_cart", {"cartLine": self._line(removed)})
            )
        if cart:
            lines = [self._line(p) for p in cart]
            out.append(self._event(v, "cart_viewed", {"cart": {"lines": lines}}, path="/cart"))
            if rng.random() < 0.45:
                checkout = self._checkout(v, cart)
                out.append(self._event(v, "checkout_started", {"checkout": checkout}))
                if rng.random() < 0.7:
                    out.append(self._event(v, "checkout_completed", {"checkout": checkout}))
        return out

    def _pick(self, ptype: str) -> Product:
        choices = self._sellable[ptype]
        weights = [1.0 / (rank + 1) for rank in range(len(choices))]  # Zipf within the type
        return self._rng.choices(choices, weights=weights)[0]

    def _event(self, v: Visitor, name: str, data: dict[str, Any], path: str = "") -> dict[str, Any]:
        self._clock += timedelta(seconds=self._rng.randint(3, 40))
        return {
            "id": str(uuid.UUID(int=self._rng.getrandbits(128))),
            "name": name,
            "type": "standard",
            "timestamp": self._clock.isoformat().replace("+00:00", "Z"),
            "clientId": v.client_id,
            "seq": 0,
            "context": {
                "document": {
                    "location": {"href": f"https://{self.shop}{path}?utm_source=newsletter"},
                    "referrer": "",
                    "title": "Nova demo store",
                },
                "navigator": {"userAgent": USER_AGENTS[v.device], "language": "en-US"},
                "window": {"innerWidth": {"mobile": 390, "tablet": 820, "desktop": 1440}[v.device]},
            },
            "data": data,
        }

    @staticmethod
    def _variant(p: Product) -> dict[str, Any]:
        v = p.variants[0]
        return {
            "id": f"gid://shopify/ProductVariant/{v.id}",
            "sku": v.sku,
            "title": v.title,
            "price": {"amount": float(v.price), "currencyCode": "USD"},
            "product": {
                "id": f"gid://shopify/Product/{p.id}",
                "title": p.title,
                "type": p.product_type,
                "vendor": p.vendor,
                "url": f"/products/{p.handle}",
            },
        }

    def _line(self, p: Product) -> dict[str, Any]:
        variant = self._variant(p)
        return {
            "merchandise": variant,
            "quantity": 1,
            "cost": {"totalAmount": dict(variant["price"])},
        }

    def _checkout(self, v: Visitor, cart: list[Product]) -> dict[str, Any]:
        rng = self._rng
        total = sum(float(p.price) for p in cart)
        address = {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "address1": "12 Analytical Row",
            "city": "London",
            "zip": "N1 7AA",
            "countryCode": "GB",
            "phone": "+44 20 7946 0958",
        }
        return {
            "token": uuid.UUID(int=rng.getrandbits(128)).hex,
            "email": f"shopper{rng.randrange(10**6)}@example.com",
            "phone": "+1 555-625-1199",
            "billingAddress": address,
            "shippingAddress": address,
            "currencyCode": "USD",
            "totalPrice": {"amount": round(total, 2), "currencyCode": "USD"},
            "subtotalPrice": {"amount": round(total, 2), "currencyCode": "USD"},
            "lineItems": [
                {
                    "id": str(i),
                    "title": p.title,
                    "quantity": 1,
                    "variant": self._variant(p),
                    "finalLinePrice": {"amount": float(p.price), "currencyCode": "USD"},
                }
                for i, p in enumerate(cart)
            ],
            "order": {
                "id": f"gid://shopify/Order/{5_500_000_000 + rng.randrange(10**6)}",
                "customer": {"id": v.customer_id, "isFirstOrder": rng.random() < 0.5},
            },
            "localization": {"country": {"isoCode": "US"}, "language": {"isoCode": "EN"}},
        }
