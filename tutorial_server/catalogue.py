"""The shop's catalogue, and how amounts are written in each currency.

Prices are integers in the currency's smallest unit (paise, cents; yen have none).
The first product's id is the one in the article's step 1, so its request works as printed.
"""
from __future__ import annotations

from dataclasses import dataclass

# Digits after the decimal point (ISO 4217). JPY is zero-decimal: 500 means ¥500.
CURRENCY_EXPONENT = {"inr": 2, "usd": 2, "jpy": 0}
CURRENCY_SYMBOL = {"inr": "₹", "usd": "$", "jpy": "¥"}


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    description: str
    unit_amount: int  # minor units
    currency: str  # lowercase ISO 4217

    def to_dict(self) -> dict:
        return {"id": self.id, "object": "product", "name": self.name,
                "description": self.description, "unit_amount": self.unit_amount,
                "currency": self.currency}


PRODUCTS = (
    Product("80980928378932", "Sample item", "The article's example product: ₹100 each.",
            100 * 100, "inr"),
    Product("prod_coffee_beans", "Coffee beans, 1 kg", "Single-origin beans, roasted this week.",
            134000, "inr"),
    Product("prod_pour_over_kit", "Pour-over kit", "Dripper, filters and a scoop.",
            1340, "usd"),
    Product("prod_enamel_mug", "Enamel mug", "Holds 350 ml; survives camping trips.",
            1200, "usd"),
    Product("prod_drip_bags", "Drip bags, box of 5", "Single-serve coffee bags.",
            500, "jpy"),
    # Cheaper than Stripe's INR minimum (₹0.50) on its own: one is refused. Two pass that
    # minimum, but an account that settles in another currency also needs the amount to
    # convert to at least its own minimum (US$0.50 for dollars): there Stripe refuses them.
    Product("prod_sugar_sachet", "Sugar sachet", "One sachet costs less than Stripe's minimum "
            "charge: order two or more.", 30, "inr"),
)

_BY_ID = {p.id: p for p in PRODUCTS}


def get_product(product_id: str) -> Product | None:
    return _BY_ID.get(product_id)


def format_amount(amount: int, currency: str) -> str:
    """Format minor units for people: format_amount(134000, "inr") == "₹1,340.00"."""
    exponent = CURRENCY_EXPONENT[currency]
    symbol = CURRENCY_SYMBOL.get(currency, currency.upper() + " ")
    sign = "-" if amount < 0 else ""
    major, minor = divmod(abs(amount), 10 ** exponent)
    text = f"{major:,}"
    if exponent:
        text += f".{minor:0{exponent}d}"
    return f"{sign}{symbol}{text}"
