"""Step 3: the server's only door to Stripe (the payments gateway).

`StripeGateway` holds the server's calls to real Stripe; `OfflineGateway` overrides the few
the offline stand-in (localstripe) needs done differently, and `make_gateway` picks one from
the settings. Teaching code calls both the same way. Each difference is a row of the course's
offline-differences table (tutorial_server/course/differences.py), which notebook 00 shows.
Playing the customer (test cards, 3-D Secure) is the notebooks' job (notebook/customer.py).
"""
from __future__ import annotations

from typing import Any

import requests
import stripe
from stripe.params import EventListParams, PaymentIntentCreateParams, RefundCreateParams
from stripe.params.checkout import SessionCreateParams as CheckoutSessionCreateParams

from .config import Settings

# Pinned so that what the lab teaches matches one documented API version, whatever
# version the account's dashboard defaults to. It is the version stripe-python 16.1.0 targets.
API_VERSION = "2026-10-28.endive"


def payment_intent_idempotency_key(order_id: str, attempt: int | None = None) -> str:
    """Derived from the order (and, for a fresh PaymentIntent after a failed one, the attempt
    number), so a retried create can never charge the order twice."""
    key = f"{order_id}-create-payment-intent"
    return key if attempt is None else f"{key}-attempt-{attempt}"


def make_gateway(settings: Settings, backend_url: str | None = None,
                 http_client: stripe.HTTPClient | None = None) -> StripeGateway:
    """The gateway for these settings: the offline stand-in's at `backend_url`, or real Stripe.
    `http_client`: stripe-python's HTTP client to send requests with (default_http_client's,
    or one that wraps it: the lab records and traces requests that way)."""
    if settings.offline:
        return OfflineGateway(settings, backend_url, http_client)
    return StripeGateway(settings, backend_url, http_client)


def default_http_client(settings: Settings) -> stripe.HTTPClient:
    """stripe-python's HTTP client for these settings. Offline: one keep-alive connection pool
    to the stand-in, shared by the server's threads; it is on this machine, so proxy settings
    from the environment never apply."""
    if not settings.offline:
        return stripe.new_default_http_client()
    session = requests.Session()
    session.trust_env = False
    return stripe.RequestsClient(session=session)


class StripeGateway:
    """The server's calls to real Stripe (test mode)."""
    offline = False
    max_network_retries = 2

    def __init__(self, settings: Settings, backend_url: str | None = None,
                 http_client: stripe.HTTPClient | None = None) -> None:
        self.backend_url = backend_url
        self.client = stripe.StripeClient(
            settings.secret_key,
            stripe_version=API_VERSION,
            base_addresses=self._base_addresses(),  # type: ignore[arg-type]
            max_network_retries=self.max_network_retries,
            http_client=http_client or default_http_client(settings),
        )

    def _base_addresses(self) -> dict[str, str]:
        return {}  # api.stripe.com

    def create_payment_intent(self, order: Any, attempt: int | None = None) -> dict:
        """Create the PaymentIntent that will collect this order's amount. `attempt`: for a
        fresh PaymentIntent after a decline (offline), part of the idempotency key."""
        intent = self.client.v1.payment_intents.create(
            params=self._cards_only(_payment_intent_params(order, attempt)),
            options={"idempotency_key": payment_intent_idempotency_key(order["id"], attempt)},
        )
        return self.normalize(intent.to_dict())

    def _cards_only(self, params: PaymentIntentCreateParams) -> PaymentIntentCreateParams:
        """Test mode: cards only. With automatic payment methods (on by default at the pinned
        API version) the Payment Element could offer methods that redirect or settle days
        later (status `processing`), which this lab does not teach; the pinned version's
        parameter for the restriction is allowed_payment_method_types. The offline stand-in
        rejects it and knows only cards anyway."""
        if not self.offline:
            params["allowed_payment_method_types"] = ["card"]
        return params

    def create_retry_payment_intent(self, order: Any, attempt: int) -> dict:
        """A fresh PaymentIntent for an order whose PaymentIntent cannot take another card
        (offline, after a decline). The key is derived from the order and the attempt number,
        so retrying this call cannot create two PaymentIntents for one attempt."""
        return self.create_payment_intent(order, attempt)

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict:
        intent = self.client.v1.payment_intents.retrieve(payment_intent_id)
        return self.normalize(intent.to_dict())

    def cancel_payment_intent(self, payment_intent_id: str, reason: str | None = None) -> dict:
        """Cancel the PaymentIntent, so that no payment can succeed on it any more.

        `reason`: Stripe's cancellation_reason (e.g. "abandoned").
        Stripe refuses (InvalidRequestError) when the PaymentIntent already succeeded, is
        already canceled, or is processing; the caller re-reads it to learn which.
        """
        params = {"cancellation_reason": reason} if reason is not None else None
        intent = self.client.v1.payment_intents.cancel(
            payment_intent_id, params=params)  # type: ignore[arg-type]
        return self.normalize(intent.to_dict())

    def retrieve_event(self, event_id: str) -> dict:
        """The event as Stripe stored it (what `stripe events resend` sends again)."""
        return self.client.v1.events.retrieve(event_id).to_dict()

    def events_about(self, payment_intent_id: str, event_type: str | None = None) -> list[dict]:
        """Every event Stripe holds about one PaymentIntent (all pages, not only the first)."""
        params: EventListParams = {"limit": 100}
        if event_type:
            params["type"] = event_type
        found = (e.to_dict() for e in self.client.v1.events.list(params=params).auto_paging_iter())
        return [e for e in found if e["data"]["object"].get("id") == payment_intent_id]

    # --- the other way: Stripe Checkout (checkout_sessions.py) ---------------------------------

    def create_checkout_session(self, order: Any, product: Any, success_url: str,
                                cancel_url: str) -> dict:
        """A Checkout Session for the order: Stripe's hosted page takes the card. Priced from
        the order (the server's price), keyed by the order: a retry cannot make two."""
        session = self.client.v1.checkout.sessions.create(
            params=_checkout_session_params(order, product, success_url, cancel_url),
            options={"idempotency_key": f"{order['id']}-create-checkout-session"})
        return session.to_dict()

    def retrieve_checkout_session(self, session_id: str) -> dict:
        return self.client.v1.checkout.sessions.retrieve(session_id).to_dict()

    def expire_checkout_session(self, session_id: str) -> dict:
        """Close an open session so that nobody can pay on it any more (Stripe refuses, with
        InvalidRequestError, once it is complete or expired)."""
        return self.client.v1.checkout.sessions.expire(session_id).to_dict()

    # --- after the payment: refunds and disputes (refunds.py, disputes.py) ---------------------

    def create_refund(self, order: Any, amount: int, idempotency_key: str) -> dict:
        """Give `amount` (minor units) of the order's payment back to the customer.

        The key comes from the order and the client's refund request
        (refunds.refund_idempotency_key), so a retried request cannot refund twice at Stripe.
        """
        params: RefundCreateParams = {
            "payment_intent": order["payment_intent"], "amount": amount,
            "metadata": {"order_id": order["id"]}}
        refund = self.client.v1.refunds.create(params=params,
                                               options={"idempotency_key": idempotency_key})
        return refund.to_dict()

    def retrieve_refund(self, refund_id: str) -> dict:
        return self.client.v1.refunds.retrieve(refund_id).to_dict()

    def refunds_of(self, payment_intent_id: str) -> list[dict]:
        """Every Refund Stripe holds for one PaymentIntent (all pages)."""
        found = self.client.v1.refunds.list(
            params={"payment_intent": payment_intent_id, "limit": 100}).auto_paging_iter()
        return [r.to_dict() for r in found]

    def retrieve_charge(self, charge_id: str) -> dict:
        return self.client.v1.charges.retrieve(charge_id).to_dict()

    @staticmethod
    def normalize(intent: dict) -> dict:
        """Real Stripe's PaymentIntent as it comes (OfflineGateway fills in what the stand-in
        leaves out)."""
        return intent

    # --- step 5 from the checkout page (checkout.py): the browser tokenizes, the server confirms

    def payment_method_from_token(self, token_id: str) -> str:
        """The payment method for a card the browser tokenized with Stripe.js (createToken).

        Raises stripe.InvalidRequestError when Stripe does not know the token.
        """
        method = self.client.v1.payment_methods.create(
            params={"type": "card", "card": {"token": token_id}})
        return method.id

    def confirm_payment_intent(self, payment_intent_id: str, payment_method: str,
                               return_url: str) -> dict:
        """Confirm on the server with the customer's payment method.

        A decline does not raise: the PaymentIntent comes back with status
        requires_payment_method and last_payment_error set. 3-D Secure leaves it in
        requires_action; the customer's browser then shows the challenge.
        """
        try:
            self._confirm(payment_intent_id, payment_method, return_url)
        except stripe.CardError:
            pass  # the decline is recorded on the PaymentIntent, read below
        return self.retrieve_payment_intent(payment_intent_id)

    def _confirm(self, payment_intent_id: str, payment_method: str, return_url: str) -> None:
        self.client.v1.payment_intents.confirm(
            payment_intent_id, params={"payment_method": payment_method, "return_url": return_url})

    def accepts_another_card(self, intent: dict) -> bool:
        """Can the customer try this PaymentIntent again with another card?"""
        return intent.get("status") in ("requires_payment_method", "requires_confirmation",
                                         "requires_action")


class OfflineGateway(StripeGateway):
    """The same calls against the offline stand-in, where it needs them done differently
    (each difference is a row of OFFLINE_DIFFERENCES)."""
    offline = True
    max_network_retries = 0  # the stand-in answers at once or not at all: retries only slow

    def __init__(self, settings: Settings, backend_url: str | None = None,
                 http_client: stripe.HTTPClient | None = None) -> None:
        if not backend_url:
            raise ValueError("offline mode needs the offline backend's URL")
        super().__init__(settings, backend_url, http_client)

    def _base_addresses(self) -> dict[str, str]:
        assert self.backend_url
        return {"api": self.backend_url}

    def cancel_payment_intent(self, payment_intent_id: str, reason: str | None = None) -> dict:
        # The stand-in rejects every parameter of cancel, cancellation_reason included.
        return super().cancel_payment_intent(payment_intent_id, None)

    @staticmethod
    def normalize(intent: dict) -> dict:
        """Give the offline stand-in's PaymentIntent the fields real Stripe returns."""
        if isinstance(intent.get("amount"), str) and intent["amount"].isdigit():
            intent["amount"] = int(intent["amount"])  # the stand-in keeps an updated amount as text
        charge = intent.get("latest_charge")
        if isinstance(charge, dict):
            intent["latest_charge"] = charge.get("id")
        if "amount_received" not in intent:
            intent["amount_received"] = intent["amount"] if intent.get("status") == "succeeded" else 0
        intent.pop("charges", None)  # an old API version's field; real Stripe dropped it
        return intent

    def payment_method_from_token(self, token_id: str) -> str:
        # The stand-in cannot make a PaymentMethod from a token; it charges the token's
        # card (card_...) directly, the way older Stripe integrations did.
        card = self.client.v1.tokens.retrieve(token_id).card
        if card is None:
            raise stripe.InvalidRequestError(f"{token_id} is not a card token.", "token")
        return card.id

    def _confirm(self, payment_intent_id: str, payment_method: str, return_url: str) -> None:
        # The stand-in cannot take payment_method in confirm itself: set it first.
        self.client.v1.payment_intents.update(
            payment_intent_id, params={"payment_method": payment_method})
        self.client.v1.payment_intents.confirm(payment_intent_id)

    def accepts_another_card(self, intent: dict) -> bool:
        # The stand-in keeps a declined charge on its PaymentIntent for good, and a
        # PaymentIntent waiting for 3-D Secure cannot take another card.
        return (super().accepts_another_card(intent) and intent["status"] != "requires_action"
                and not intent.get("latest_charge"))


def _payment_intent_params(order: Any, attempt: int | None = None) -> PaymentIntentCreateParams:
    """Amount and currency from the order (never from the client), and the order's identity in
    metadata so every event about this PaymentIntent leads back to the order."""
    metadata = {"order_id": order["id"], "product": order["product_id"],
                "quantity": str(order["quantity"]), "customer": order["customer"]}
    if attempt is not None:
        metadata["attempt"] = str(attempt)
    return {"amount": order["amount"], "currency": order["currency"], "metadata": metadata}


def _checkout_session_params(order: Any, product: Any, success_url: str,
                             cancel_url: str) -> CheckoutSessionCreateParams:
    """The session's line items from the order as the server priced it. With a volume
    discount the order is one line at its total: Checkout shows a discount only from a Coupon
    object, and the server's price is the one that counts. Cards only, as for PaymentIntents
    (StripeGateway._cards_only): the lab teaches no method that redirects or settles later."""
    metadata = {"order_id": order["id"], "product": order["product_id"],
                "quantity": str(order["quantity"]), "customer": order["customer"]}
    if order["discount"]:
        name = f"{order['quantity']} × {product.name} (volume discount included)"
        quantity, unit_amount = 1, order["amount"]
    else:
        name, quantity, unit_amount = product.name, order["quantity"], product.unit_amount
    return {"mode": "payment", "allowed_payment_method_types": ["card"],
            "line_items": [{"quantity": quantity, "price_data": {
                "currency": order["currency"], "unit_amount": unit_amount,
                "product_data": {"name": name}}}],
            "client_reference_id": order["id"], "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": success_url, "cancel_url": cancel_url}
