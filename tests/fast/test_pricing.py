"""Step 2 as plain functions: integer minor units from the catalogue to the order."""
import pytest

from tutorial_server.catalogue import PRODUCTS, format_amount, get_product
from tutorial_server.pricing import price_order


def test_catalogue_has_integer_prices_in_inr_usd_and_jpy():
    assert len(PRODUCTS) >= 4
    assert {p.currency for p in PRODUCTS} >= {"inr", "usd", "jpy"}
    assert all(type(p.unit_amount) is int and p.unit_amount > 0 for p in PRODUCTS)


def test_the_articles_product_costs_100_rupees_in_paise():
    assert get_product("80980928378932").unit_amount == 100 * 100


@pytest.mark.parametrize("product, quantity, subtotal, discount, amount", [
    ("prod_coffee_beans", 1, 134000, 0, 134000),
    ("prod_drip_bags", 9, 4500, 0, 4500),
    ("prod_drip_bags", 10, 5000, 500, 4500),      # 10% off from 10 items
    ("prod_pour_over_kit", 11, 14740, 1474, 13266),
    ("prod_enamel_mug", 13, 15600, 1560, 14040),
    ("80980928378932", 100, 1000000, 100000, 900000),
])
def test_price_order_in_minor_units(product, quantity, subtotal, discount, amount):
    priced = price_order(get_product(product), quantity)
    assert (priced.subtotal, priced.discount, priced.amount) == (subtotal, discount, amount)
    assert all(type(v) is int for v in (priced.subtotal, priced.discount, priced.amount))


def test_discount_rounds_half_up_to_a_whole_minor_unit():
    # ¥5 x 10 would not happen in the catalogue, but the rule must hold for odd totals:
    from tutorial_server.catalogue import Product
    odd = Product("p", "p", "", 25, "jpy")
    assert price_order(odd, 10).discount == 25  # 10% of 250
    assert price_order(Product("q", "q", "", 15, "jpy"), 11).discount == 17  # 16.5 -> 17


@pytest.mark.parametrize("quantity", [0, -1, 101])
def test_price_order_refuses_quantities_outside_1_to_100(quantity):
    with pytest.raises(ValueError, match="quantity must be between 1 and 100"):
        price_order(PRODUCTS[0], quantity)


@pytest.mark.parametrize("amount, currency, text", [
    (134000, "inr", "₹1,340.00"), (500, "jpy", "¥500"), (1340, "usd", "$13.40"),
    (5, "usd", "$0.05"), (1234567, "jpy", "¥1,234,567"),
])
def test_format_amount(amount, currency, text):
    assert format_amount(amount, currency) == text


def test_a_priced_order_cannot_be_changed_after_pricing():
    import dataclasses
    priced = price_order(get_product("prod_enamel_mug"), 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        priced.amount = 1  # type: ignore[misc]


def test_stripes_amount_limits_are_checked_before_stripe_is_asked():
    from tutorial_server.pricing import AmountOutOfRange, check_amount_limits
    for currency, minimum in (("usd", 50), ("inr", 50), ("jpy", 50)):
        check_amount_limits(minimum, currency)
        with pytest.raises(AmountOutOfRange) as refused:
            check_amount_limits(minimum - 1, currency)
        assert refused.value.code == "amount_too_small"
    check_amount_limits(99_999_999, "inr")  # 8 digits: the most Stripe charges at once
    with pytest.raises(AmountOutOfRange) as refused:
        check_amount_limits(100_000_000, "inr")
    assert refused.value.code == "amount_too_large"
    sachet = get_product("prod_sugar_sachet")
    with pytest.raises(AmountOutOfRange, match="below Stripe's minimum charge of ₹0.50"):
        price_order(sachet, 1)
    assert price_order(sachet, 2).amount == 60


def test_the_limits_apply_to_the_discounted_total():
    """Stripe charges the amount after the discount: 100 x $10,000.00 is $1,000,000.00 (over
    the 8-digit limit) before the 10% discount and $900,000.00 after it, which Stripe takes."""
    from tutorial_server.catalogue import Product
    priced = price_order(Product("p_big", "big", "", 1_000_000, "usd"), 100)
    assert (priced.subtotal, priced.discount, priced.amount) == (100_000_000, 10_000_000,
                                                                 90_000_000)
