"""Typed models of the events a Shopify Web Pixel delivers, and Nova's own widget events.

Field names and paths follow Shopify's Web Pixels API (standard events reference). Each model
keeps only what Nova may use; everything else in the payload is ignored on purpose, so that
data we never asked for (and PII we must not keep) has no place to land.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
)
from pydantic.alias_generators import to_camel

ShortText = Annotated[str, Field(max_length=512)]
IdText = Annotated[str | int, Field(union_mode="left_to_right")]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Money(_Model):
    amount: float = Field(ge=0)
    currency_code: str | None = Field(None, max_length=8)


class ProductRef(_Model):
    id: IdText
    title: ShortText | None = None
    type: ShortText | None = None
    vendor: ShortText | None = None


class ProductVariant(_Model):
    id: IdText | None = None
    sku: ShortText | None = None
    price: Money | None = None
    product: ProductRef


class CartLineCost(_Model):
    total_amount: Money | None = None


class CartLine(_Model):
    merchandise: ProductVariant
    quantity: int = Field(1, ge=0, le=100_000)
    cost: CartLineCost | None = None


class Collection(_Model):
    id: IdText
    title: ShortText | None = None
    product_variants: list[ProductVariant] = Field(default_factory=list, max_length=500)


class SearchResult(_Model):
    query: str = Field(max_length=512)
    product_variants: list[ProductVariant] = Field(default_factory=list, max_length=500)


class Cart(_Model):
    lines: list[CartLine] = Field(default_factory=list, max_length=500)


class CheckoutLineItem(_Model):
    quantity: int = Field(1, ge=0, le=100_000)
    variant: ProductVariant | None = None
    final_line_price: Money | None = None


class OrderCustomer(_Model):
    id: IdText | None = None
    is_first_order: bool | None = None


class Order(_Model):
    id: IdText | None = None
    customer: OrderCustomer | None = None


class Country(_Model):
    iso_code: str | None = Field(None, max_length=8)


class Localization(_Model):
    country: Country | None = None


class Checkout(_Model):
    """email, phone, billingAddress and shippingAddress exist in Shopify's payload; they are
    deliberately not fields here, so they are dropped at parse time and never stored."""

    order: Order | None = None
    line_items: list[CheckoutLineItem] = Field(default_factory=list, max_length=1000)
    total_price: Money | None = None
    currency_code: str | None = Field(None, max_length=8)
    localization: Localization | None = None


class Location(_Model):
    href: str | None = Field(None, max_length=4096)


class Document(_Model):
    location: Location | None = None


class Navigator(_Model):
    user_agent: str | None = Field(None, max_length=2048)


class Window(_Model):
    inner_width: int | None = None


class Context(_Model):
    document: Document | None = None
    navigator: Navigator | None = None
    window: Window | None = None


class Envelope(_Model):
    """The fields every Web Pixel event carries (Shopify's `event` object)."""

    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=128)
    type: str = Field("standard", max_length=32)
    timestamp: datetime
    client_id: str = Field(min_length=1, max_length=128)
    context: Context | None = None

    @field_validator("timestamp")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # Shopify sends UTC with a Z; a timestamp without a zone is read as UTC, not local time.
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Data(_Model):
    pass


class PageViewedData(_Data):
    pass


class ProductViewedData(_Data):
    product_variant: ProductVariant


class CollectionViewedData(_Data):
    collection: Collection


class SearchSubmittedData(_Data):
    search_result: SearchResult


class CartLineData(_Data):
    # Shopify types cartLine as nullable (e.g. an add that failed); such events carry no product.
    cart_line: CartLine | None = None


class CartViewedData(_Data):
    cart: Cart | None = None


class CheckoutData(_Data):
    checkout: Checkout


class RecommendedProduct(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: IdText
    position: int = Field(ge=1, le=1000)


class RecommendationViewedData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    ranking_id: str = Field(min_length=1, max_length=128)
    products: list[RecommendedProduct] = Field(min_length=1, max_length=100)
    widget: str | None = Field(None, max_length=128)


class RecommendationClickedData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    ranking_id: str = Field(min_length=1, max_length=128)
    product_id: IdText
    position: int = Field(ge=1, le=1000)
    widget: str | None = Field(None, max_length=128)


class PageViewed(Envelope):
    name: Literal["page_viewed"]
    data: PageViewedData = Field(default_factory=PageViewedData)


class ProductViewed(Envelope):
    name: Literal["product_viewed"]
    data: ProductViewedData


class CollectionViewed(Envelope):
    name: Literal["collection_viewed"]
    data: CollectionViewedData


class SearchSubmitted(Envelope):
    name: Literal["search_submitted"]
    data: SearchSubmittedData


class ProductAddedToCart(Envelope):
    name: Literal["product_added_to_cart"]
    data: CartLineData


class ProductRemovedFromCart(Envelope):
    name: Literal["product_removed_from_cart"]
    data: CartLineData


class CartViewed(Envelope):
    name: Literal["cart_viewed"]
    data: CartViewedData = Field(default_factory=CartViewedData)


class CheckoutStarted(Envelope):
    name: Literal["checkout_started"]
    data: CheckoutData


class CheckoutCompleted(Envelope):
    name: Literal["checkout_completed"]
    data: CheckoutData


# Custom events published with analytics.publish() arrive with their payload in `customData`;
# widgets posting directly may use `data`. Both are accepted.
_CUSTOM_DATA = AliasChoices("customData", "custom_data", "data")


class RecommendationViewed(Envelope):
    name: Literal["nova:recommendation_viewed"]
    data: RecommendationViewedData = Field(validation_alias=_CUSTOM_DATA)


class RecommendationClicked(Envelope):
    name: Literal["nova:recommendation_clicked"]
    data: RecommendationClickedData = Field(validation_alias=_CUSTOM_DATA)


class GenericEvent(Envelope):
    """Any other well-formed event (DOM events, other apps' custom events, future standard ones)."""

    data: dict[str, Any] | None = Field(None, validation_alias=_CUSTOM_DATA)


KNOWN_EVENTS: dict[str, type[Envelope]] = {
    model.model_fields["name"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in (
        PageViewed,
        ProductViewed,
        CollectionViewed,
        SearchSubmitted,
        ProductAddedToCart,
        ProductRemovedFromCart,
        CartViewed,
        CheckoutStarted,
        CheckoutCompleted,
        RecommendationViewed,
        RecommendationClicked,
    )
}


def _event_tag(value: Any) -> str:
    name = value.get("name") if isinstance(value, dict) else getattr(value, "name", None)
    # Only a string can name a known event; anything else is validated (and rejected) as generic.
    return name if isinstance(name, str) and name in KNOWN_EVENTS else "generic"


PixelEvent = Annotated[
    Annotated[PageViewed, Tag("page_viewed")]
    | Annotated[ProductViewed, Tag("product_viewed")]
    | Annotated[CollectionViewed, Tag("collection_viewed")]
    | Annotated[SearchSubmitted, Tag("search_submitted")]
    | Annotated[ProductAddedToCart, Tag("product_added_to_cart")]
    | Annotated[ProductRemovedFromCart, Tag("product_removed_from_cart")]
    | Annotated[CartViewed, Tag("cart_viewed")]
    | Annotated[CheckoutStarted, Tag("checkout_started")]
    | Annotated[CheckoutCompleted, Tag("checkout_completed")]
    | Annotated[RecommendationViewed, Tag("nova:recommendation_viewed")]
    | Annotated[RecommendationClicked, Tag("nova:recommendation_clicked")]
    | Annotated[GenericEvent, Tag("generic")],
    Discriminator(_event_tag),
]

PIXEL_EVENT: TypeAdapter[Envelope] = TypeAdapter(PixelEvent)
