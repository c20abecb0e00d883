"""ingest/ids.py: Shopify GIDs, plain ids and integers become one bare decimal string."""

from __future__ import annotations

import pytest

from ingest import ids


def rejected_as_product_id(value: object) -> bool:
    try:
        ids.product_id(value)
    except ValueError:
        return True
    return False


@pytest.mark.parametrize(
    "value",
    [
        "gid://shopify/Product/7982301",
        "7982301",
        7982301,
        "  gid://shopify/Product/7982301  ",
        " 7982301\n",
        "0007982301",
        "gid://shopify/Product/0007982301",
        "gid://shopify/Product/7982301?variant=1",
    ],
)
def test_every_spelling_of_a_product_id_is_the_same_id(value: object) -> None:
    assert ids.product_id(value) == "7982301"


def test_variant_gid_and_plain_variant_id() -> None:
    assert ids.variant_id("gid://shopify/ProductVariant/44012") == "44012"
    assert ids.variant_id("44012") == "44012"
    assert ids.variant_id(44012) == "44012"


def test_shopify_id_of_other_kinds() -> None:
    assert ids.shopify_id("gid://shopify/Collection/88", "Collection") == "88"
    assert ids.shopify_id("gid://shopify/Customer/5", "Customer") == "5"
    assert ids.shopify_id("gid://shopify/Order/12", "Order") == "12"


def test_twenty_digit_ids_are_accepted() -> None:
    assert ids.product_id("9" * 20) == "9" * 20
    assert ids.product_id("gid://shopify/Product/" + "9" * 20) == "9" * 20


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("gid://shopify/ProductVariant/44012", "Product"),
        ("gid://shopify/Product/7982301", "ProductVariant"),
        ("gid://shopify/Collection/88", "Product"),
        ("gid://shopify/Customer/5", "Order"),
    ],
)
def test_gid_of_the_wrong_kind_is_rejected(value: str, kind: str) -> None:
    with pytest.raises(ValueError, match=f"expected a {kind} id"):
        ids.shopify_id(value, kind)


def test_wrong_kind_message_names_the_kind_received() -> None:
    with pytest.raises(ValueError, match="got a ProductVariant id"):
        ids.product_id("gid://shopify/ProductVariant/44012")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "12ab",
        "-5",
        "1.5",
        "1 2",
        "9" * 21,
        "gid://shopify/Product/",
        "gid://shopify/Product/abc",
        "gid://other/Product/1",
        "https://shop.example/products/1",
        "gid://shopify/Product/1/2",
    ],
)
def test_strings_that_are_not_ids_are_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="not a Shopify Product id"):
        ids.product_id(value)


@pytest.mark.parametrize("value", [0, -1, -7982301])
def test_non_positive_integers_are_rejected(value: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        ids.product_id(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_not_ids(value: bool) -> None:
    with pytest.raises(ValueError, match="boolean"):
        ids.product_id(value)


@pytest.mark.parametrize("value", [None, 1.0, 7982301.0, ["1"], {"id": 1}, b"1"])
def test_other_types_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="expected a Product id"):
        ids.product_id(value)


def test_error_message_is_bounded() -> None:
    with pytest.raises(ValueError) as info:
        ids.product_id("x" * 10_000)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    "value",
    ["\u0661\u0662\u0663", "\uff11\uff12\uff13", "gid://shopify/Product/\uff11\uff12\uff13"],
)
def test_non_ascii_digits_are_not_ids(value: str) -> None:
    assert rejected_as_product_id(value)


@pytest.mark.parametrize("value", ["0", "000", "gid://shopify/Product/0"])
def test_zero_is_not_an_id_in_any_spelling(value: str) -> None:
    assert rejected_as_product_id(value)


# --- gid_kind ---------------------------------------------------------------------------------


def test_gid_kind() -> None:
    assert ids.gid_kind("gid://shopify/OrderIdentity/9") == "OrderIdentity"
    assert ids.gid_kind(" gid://shopify/Product/1 ") == "Product"
    assert ids.gid_kind("9") is None
    assert ids.gid_kind(9) is None
    assert ids.gid_kind("gid://shopify/Product/x") is None


# --- shop domains -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "nova-demo.myshopify.com",
        "Nova-Demo.myshopify.com",
        "NOVA-DEMO.MYSHOPIFY.COM",
        "https://nova-demo.myshopify.com",
        "https://nova-demo.myshopify.com/",
        "http://nova-demo.myshopify.com//",
        "HTTPS://Nova-Demo.myshopify.com/",
        "  nova-demo.myshopify.com \n",
    ],
)
def test_shop_domain_spellings_normalise_to_one(value: str) -> None:
    assert ids.shop_domain(value) == "nova-demo.myshopify.com"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "nova-demo",
        "nova-demo.com",
        "nova-demo.myshopify.com.evil.example",
        "evil.example/nova-demo.myshopify.com",
        "nova-demo.myshopify.com/admin",
        "-nova.myshopify.com",
        "nova_demo.myshopify.com",
        "nova demo.myshopify.com",
        "sub.nova-demo.myshopify.com",
        ".myshopify.com",
        "a" * 61 + ".myshopify.com",
        "ftp://nova-demo.myshopify.com",
        "nova-demo.myshopify.com:443",
    ],
)
def test_non_shop_domains_are_rejected(value: str) -> None:
    with pytest.raises(ValueError, match=r"myshopify\.com"):
        ids.shop_domain(value)


def test_longest_shop_name_is_accepted() -> None:
    name = "a" * 60
    assert ids.shop_domain(f"{name}.myshopify.com") == f"{name}.myshopify.com"


def test_shop_domain_with_embedded_trailing_newline_is_rejected() -> None:
    try:
        result = ids.shop_domain("nova-demo.myshopify.com\n/")
    except ValueError:
        return
    assert result == "nova-demo.myshopify.com"
