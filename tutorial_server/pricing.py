"""Step 2: the server prices the order. The client only says what and how many.

Everything is integer arithmetic in minor units: no floats, so no rounding surprises
(0.1 + 0.2 != 0.3 in floating point; 10 + 20 == 30 in paise).
"""
from __future__ import annotations

from dataclasses import dataclass

from .catalogue import Product, format_amount

MIN_QUANTITY = 1
MAX_QUANTITY = 100
# A volume discount, so the server has real "custom logic" to apply (the article's step 2):
# 10% off from 10 items on (the article's step 1 asks for 10).
VOLUME_DISCOUNT_FROM = 10
VOLUME_DISCOUNT_PERCENT = 10

# What Stripe will charge at all, per currency, in minor units. Below the minimum Stripe
# refuses the PaymentIntent (amount_too_small); Stripe's table lists USD $0.50, INR ₹0.50 and
# JPY ¥50 (not the same value: ₹0.50 is under one US cent). The amount must also convert to
# at least the minimum of the account's settlement currency (US$0.50 on a dollar account),
# which only Stripe can check (it knows the rate). At most 8 digits (99,999,999 minor units).
# Source: https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts
MINIMUM_CHARGE = {"usd": 50, "inr": 50, "jpy": 50}
MAXIMUM_CHARGE = 99_999_999


class AmountOutOfRange(ValueError):
    """The order's total is one Stripe would refuse: the server says so before asking."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code  # Stripe's own error codes: amount_too_small, amount_too_large


@dataclass(frozen=True)
class PricedOrder:
    product: Product
    quantity: int
    subtotal: int
    discount: int
    amount: int
    currency: str


def price_order(product: Product, quantity: int) -> PricedOrder:
    """Price `quantity` of `product`, all in the product currency's minor units."""
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise ValueError(f"quantity must be between {MIN_QUANTITY} and {MAX_QUANTITY}")
    subtotal = product.unit_amount * quantity
    discount = 0
    if quantity >= VOLUME_DISCOUNT_FROM:
        # Round half up to a whole minor unit: integer maths, no float ever involved.
        discount = (subtotal * VOLUME_DISCOUNT_PERCENT + 50) // 100
    check_amount_limits(subtotal - discount, product.currency)
    return PricedOrder(product=product, quantity=quantity, subtotal=subtotal,
                       discount=discount, amount=subtotal - discount, currency=product.currency)


def check_amount_limits(amount: int, currency: str) -> None:
    """Raise AmountOutOfRange if Stripe would refuse to charge `amount` in `currency`."""
    minimum = MINIMUM_CHARGE.get(currency)
    if minimum is not None and amount < minimum:
        raise AmountOutOfRange(
            f"The order comes to {format_amount(amount, currency)}, below Stripe's minimum "
            f"charge of {format_amount(minimum, currency)}: order more.", "amount_too_small")
    if amount > MAXIMUM_CHARGE:
        raise AmountOutOfRange(
            f"The order comes to {format_amount(amount, currency)}; Stripe charges at most "
            f"{MAXIMUM_CHARGE:,} minor units (8 digits) at once.", "amount_too_large")
