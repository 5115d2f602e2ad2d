"""The customer's side of an offline lab that runs elsewhere (a class server), through the
merchant server: what Stripe.js lets a browser do with the publishable key and a PaymentIntent's
client secret, and nothing more.

The offline Stripe of a lab answers only that lab's own key, on its own machine (docs/security.md):
a notebook on a learner's laptop cannot reach the instructor's. So, there, `lab.gateway` is this
object: it makes card payment methods, confirms, reads and completes 3-D Secure for PaymentIntents
whose client secret this notebook was given (the orders it created), through the merchant server's
relay (lab/stripe_js_relay.py). What only the Stripe account's secret key may do (list every event,
create PaymentIntents or refunds directly) stays on the instructor's machine: `client` says so.
"""
from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import requests
import stripe

from ..config import OFFLINE_PUBLISHABLE_KEY
from ..gateway import OfflineGateway

RELAY = "/offline-stripe"


class AccountOnly(RuntimeError):
    """This needs the lab's Stripe account (its secret key), which stays on its machine."""


class _NoAccount:
    """Stands where the gateway's Stripe client would be: every use says why it cannot."""

    def __getattr__(self, name: str) -> Any:
        raise AccountOnly("This needs the lab's Stripe account (its secret key), which stays "
                          "on the machine running the lab; a notebook on a class server plays "
                          "the customer only.")


class CustomerGateway(OfflineGateway):
    """The server's gateway for what a customer does (see the module's doc); everything else
    it would do needs the account (its `client`), and says so."""

    def __init__(self, server_url: str, client_secrets: dict[str, str]) -> None:
        # Not the server gateway's __init__: no Stripe client, no key.
        self.backend_url = None
        self.client = cast(stripe.StripeClient, _NoAccount())
        self.server_url = server_url.rstrip("/")
        self._client_secrets = client_secrets  # PaymentIntent id -> client secret (the lab's)
        self._session = requests.Session()
        # As the checkout page's own Stripe.js would: the relay takes calls from its own origin.
        self._session.headers["Origin"] = "{0.scheme}://{0.netloc}".format(urlsplit(self.server_url))

    def _secret(self, payment_intent_id: str) -> str:
        secret = self._client_secrets.get(payment_intent_id)
        if secret is None:
            raise stripe.InvalidRequestError(
                f"{payment_intent_id}: only the customer who created its order (and so holds "
                "its client secret) can see it from here.", "id", http_status=404)
        return secret

    def _call(self, method: str, path: str, **kw) -> dict:
        answer = self._session.request(method, self.server_url + RELAY + path, timeout=15, **kw)
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code == 200:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or f"HTTP {answer.status_code}")
        if answer.status_code == 402 or error.get("type") == "card_error":
            raise stripe.CardError(message, error.get("param"), error.get("code"),
                                   http_status=answer.status_code)
        raise stripe.InvalidRequestError(message, error.get("param"),
                                         http_status=answer.status_code)

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict:
        secret = self._secret(payment_intent_id)
        return self.normalize(self._call("GET", f"/v1/payment_intents/{payment_intent_id}",
                                         params={"client_secret": secret}))

    def create_card_payment_method(self, number: str) -> str:
        return self._call("POST", "/v1/payment_methods", data={
            "type": "card", "card[number]": number, "card[exp_month]": "12",
            "card[exp_year]": "2034", "card[cvc]": "123", "key": OFFLINE_PUBLISHABLE_KEY})["id"]

    def confirm_payment_intent(self, payment_intent_id: str, payment_method: str,
                               return_url: str) -> dict:
        """As the server's gateway: a decline does not raise (the PaymentIntent says it)."""
        try:
            self._call("POST", f"/v1/payment_intents/{payment_intent_id}/confirm", data={
                "client_secret": self._secret(payment_intent_id),
                "payment_method": payment_method, "key": OFFLINE_PUBLISHABLE_KEY})
        except stripe.CardError:
            pass
        return self.retrieve_payment_intent(payment_intent_id)

    def authenticate(self, payment_intent_id: str, approve: bool) -> dict:
        """The offline 3-D Secure challenge, answered as the customer."""
        self._call("POST", f"/v1/payment_intents/{payment_intent_id}/_authenticate",
                   params={"success": "true" if approve else "false"},
                   json={"key": OFFLINE_PUBLISHABLE_KEY,
                         "client_secret": self._secret(payment_intent_id)})
        return self.retrieve_payment_intent(payment_intent_id)
