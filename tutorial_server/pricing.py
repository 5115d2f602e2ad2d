"""Step 2: the server prices the order. The client only says what and how many.

Everything is integer arithmetic in minor units: no floats, so no rounding surprises
(0.1 + 0.2 != 0.3 in floating point; 10 + 20 == 30 in paise).
"""
from __future__ import annotations

from dataclasses import dataclass

from .catalogue import Product

MIN_QUANTITY = 1
MAX_QUANTITY = 100
# A volume discount, so the server has real "custom logic" to apply (the article's step 2):
# 10% off from 10 items on (the article's step 1 asks for 10).
VOLUME_DISCOUNT_FROM = 10
VOLUME_DISCOUNT_PERCENT = 10


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
    return PricedOrder(product=product, quantity=quantity, subtotal=subtotal,
                       discount=discount, amount=subtotal - discount, currency=product.currency)
