"""Small ipywidgets for the notebooks: pick a product and quantity (step 1), pick a test card
and pay (step 5). Each shows the exact request it sends and the answer it gets."""
from __future__ import annotations

import ipywidgets as widgets

from ..catalogue import format_amount
from ..checkout import TEST_CARDS
from .client import LabClient
from .customer import PaymentRefused
from .display import show


def order_picker(lab: LabClient, customer: str | None = None) -> widgets.VBox:
    """Step 1 by hand: choose a product and a quantity, send the order, see the answer."""
    products = lab.products()
    product = widgets.Dropdown(
        description="Product",
        options=[(f"{p['name']} ({format_amount(p['unit_amount'], p['currency'])})", p["id"])
                 for p in products])
    quantity = widgets.BoundedIntText(value=1, min=1, max=100, description="Quantity")
    send = widgets.Button(description="Send order", button_style="primary")
    out = widgets.Output()

    def on_send(_button):
        out.clear_output()
        body = {"productId": product.value, "quantity": quantity.value}
        if customer:
            body["customer"] = customer
        with out:
            print("POST /api/orders")
            show(body)
            try:
                response = lab.post("/api/orders", json=body)
                print(f"-> {response.status_code}")
                show(response.json())
            except Exception as error:  # a widget explains; it never shows a traceback
                print(f"Could not send the order ({type(error).__name__}): is the lab still "
                      "running? Run the notebook's first cell again.")

    send.on_click(on_send)
    return widgets.VBox([product, quantity, send, out])


def card_picker(lab: LabClient, order: dict) -> widgets.VBox:
    """Step 5 by hand: choose a test card and pay the order's PaymentIntent with it."""
    card = widgets.Dropdown(description="Test card",
                            options=[(f"{name}: {c['card']}", name) for name, c in TEST_CARDS.items()])
    pay = widgets.Button(description="Pay", button_style="success")
    out = widgets.Output()

    def on_pay(_button):
        out.clear_output()
        with out:
            try:
                intent = lab.pay(order, card.value)
            except PaymentRefused as refusal:  # says what happened and what to do
                print(f"Not paid: {refusal.user_message}")
                return
            except Exception as error:  # a widget explains; it never shows a traceback
                print(f"Not paid: {type(error).__name__}: {error}".splitlines()[0])
                return
            show(intent, keys=["id", "status", "amount", "currency", "last_payment_error",
                               "next_action"])

    pay.on_click(on_pay)
    return widgets.VBox([card, pay, out])
