"""Step 3: the server's only door to Stripe (the payments gateway).

Teaching code calls these functions the same way in both modes. Everything that differs
between real Stripe (test mode) and the offline stand-in (localstripe) is handled here and
listed in OFFLINE_DIFFERENCES, which notebook 00 shows as a table.
"""
from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import requests
import stripe
from stripe.params import EventListParams, PaymentIntentCreateParams, RefundCreateParams

from . import stripe_recorder
from .config import Settings

# Pinned so that what the lab teaches matches one documented API version, whatever
# version the account's dashboard defaults to. It is the version stripe-python 16.1.0 targets.
API_VERSION = "2026-10-28.endive"
# Stripe.js is versioned by the same release names since 2025 (acacia, basil, clover, ...):
# https://docs.stripe.com/sdks/stripejs-versioning . The release paired with API_VERSION is
# loaded from js.stripe.com/<release>/stripe.js, the URL @stripe/stripe-js 10.2.1 (the React
# shop's) builds for its RELEASE_TRAIN 'endive'. js.stripe.com/v3 is the older, unversioned one.
STRIPE_JS_URL = f"https://js.stripe.com/{API_VERSION.split('.')[1]}/stripe.js"

# Parameters (and endpoints) the gateway sends ONLY to the offline stand-in, on purpose. Every
# other parameter the package sends must be one stripe-python's typed params declare for the
# pinned API version: tests/test_stripe_fidelity.py checks each recorded request against them.
# Each entry is also a row of OFFLINE_DIFFERENCES below (a test checks that too).
OFFLINE_ONLY_PARAMS: dict[tuple[str, str], frozenset[str]] = {
    # localstripe's private route that plays the customer's 3-D Secure challenge. Real Stripe
    # has no such endpoint: the customer authenticates in the browser through Stripe.js.
    # Called only by complete_3ds_offline(), and only offline (in test mode it prints where the
    # customer completes the challenge instead).
    ("POST", "/v1/payment_intents/{id}/_authenticate"): frozenset({"client_secret", "success"}),
}

OFFLINE_DIFFERENCES: list[dict[str, str]] = [
    {"topic": "Idempotency-Key",
     "real": "Same key + same parameters returns the first result for 24 h.",
     "offline": "Ignored: the same key twice creates two PaymentIntents.",
     "lab": "The order store links one PaymentIntent per order at a time; the checkout page "
            "makes a second only to retry after a decline offline (see below)."},
    {"topic": "amount",
     "real": "Always an integer.",
     "offline": "Returned as a string after an update that changes it.",
     "lab": "Gateway converts it back to an integer."},
    {"topic": "amount_received",
     "real": "Present on every PaymentIntent.",
     "offline": "Missing.",
     "lab": "Gateway fills it in: the amount once succeeded, else 0."},
    {"topic": "latest_charge",
     "real": "A Charge id (ch_...), expandable.",
     "offline": "The whole Charge object embedded.",
     "lab": "Gateway reduces it to the id."},
    {"topic": "charges",
     "real": "Not on PaymentIntents since API version 2022-11-15 (latest_charge replaced it).",
     "offline": "An embedded list of Charges (a field of older API versions).",
     "lab": "Gateway drops it, so code never learns to rely on it."},
    {"topic": "last_payment_error",
     "real": "type (e.g. card_error), code, decline_code (e.g. generic_decline), message, "
             "charge, payment_method, doc_url.",
     "offline": "Only charge, code and message; no type, no decline_code.",
     "lab": "The server reads code, decline_code and message, and copes with a missing "
            "decline_code."},
    {"topic": "Webhook events",
     "real": "Many types (payment_intent.created, charge.succeeded, ...); failed deliveries "
             "are retried (test mode: a few times over hours; live mode: up to 3 days); "
             "events can be listed and retrieved for 30 days.",
     "offline": "Only payment_intent.succeeded and payment_intent.payment_failed, "
                "one attempt, about 1 s after the call.",
     "lab": "`python -m tutorial_server reconcile` settles orders whose webhook was lost."},
    {"topic": "Event api_version",
     "real": "The webhook endpoint's API version, else the account's default; `stripe listen` "
             "uses the account's default unless given --latest, so it may differ from the "
             "version the lab pins.",
     "offline": "Always 2017-08-15.",
     "lab": "The server reads only fields both versions share, and re-reads the PaymentIntent."},
    {"topic": "Webhook endpoints",
     "real": "Created in the Dashboard or by `stripe listen`, each with its own whsec_ secret.",
     "offline": "Registered through a private /_config route; kept in memory only.",
     "lab": "The lab registers its /webhook with the lab's secret at every start."},
    {"topic": "Test cards (server side)",
     "real": "pm_card_visa, pm_card_chargeCustomerFail, pm_card_authenticationRequired "
             "(the card 4000 0027 6000 3184), ...",
     "offline": "pm_card_visa and pm_card_chargeCustomerFail work; pm_card_authenticationRequired "
                "is unknown, so 3-D Secure needs a PaymentMethod made from the raw number "
                "4000002760003184.",
     "lab": "Gateway maps each test scenario to what the backend accepts (gateway.TEST_CARDS)."},
    {"topic": "Confirm with a payment method",
     "real": "`confirm` takes payment_method (and return_url) in one call.",
     "offline": "confirm with payment_method answers 500 Not implemented.",
     "lab": "Offline, the gateway first sets payment_method with an update, then confirms."},
    {"topic": "3-D Secure challenge",
     "real": "The customer completes it in the browser (Stripe.js); there is no API call for it.",
     "offline": "POST /v1/payment_intents/{id}/_authenticate with client_secret and "
                "success=true or false completes it.",
     "lab": "complete_3ds_offline() calls it, offline only. These are the only Stripe API "
            "parameters the lab sends that real Stripe does not know "
            "(gateway.OFFLINE_ONLY_PARAMS); the lab's set-up calls to the stand-in's own "
            "/_config routes (webhook registration, reset) are not Stripe's API at all."},
    {"topic": "Retry after a decline",
     "real": "The same PaymentIntent takes another payment method and confirm.",
     "offline": "A PaymentIntent whose charge was declined cannot be confirmed again "
                "(a failed 3-D Secure one can), and one waiting for 3-D Secure cannot take "
                "another card.",
     "lab": "The checkout server gives the order a fresh PaymentIntent (idempotency key "
            "from the order and attempt number), links it with orders.replace_payment_intent "
            "and cancels the declined one; the order keeps its attempts. Server-side lessons "
            "retry on a fresh order."},
    {"topic": "Stripe.js in the browser",
     "real": "js.stripe.com: the Payment Element (iframes) and stripe.confirmPayment, which "
             "sends the browser to return_url (it returns the PaymentIntent to the page only "
             "with redirect: 'if_required').",
     "offline": "A mock served by the stand-in: plain card inputs, no Payment Element, no "
                "confirmPayment; confirmCardPayment works only for a 3-D Secure challenge.",
     "lab": "The checkout page loads checkout-stripe.js (test mode) or checkout-offline.js: "
            "createToken in the browser, confirm on the server, then confirmCardPayment for "
            "the challenge. Offline, the mock and the two calls it makes (card token, 3-D "
            "Secure answer) go through the merchant server (/offline-stripe/), so the page "
            "talks to its own origin only: on a class server and behind JupyterHub too."},
    {"topic": "Card tokens",
     "real": "A token (tok_...) becomes a PaymentMethod with payment_methods.create(card[token]).",
     "offline": "No PaymentMethod from a token; the token's card (card_...) is charged directly.",
     "lab": "gateway.payment_method_from_token() does whichever the backend accepts."},
    {"topic": "3-D Secure events",
     "real": "payment_intent.requires_action, and payment_failed when authentication fails.",
     "offline": "No event for either.",
     "lab": "`sync`, `reconcile` or the checkout page's status check marks the order "
            "attempted. A failed challenge counts one attempt, even when its payment_failed "
            "webhook reports it too; offline, two failed challenges on one PaymentIntent look "
            "alike and count as one."},
    {"topic": "Canceling a PaymentIntent",
     "real": "cancel takes cancellation_reason (abandoned, duplicate, fraudulent, "
             "requested_by_customer) and sends payment_intent.canceled; it works from "
             "requires_payment_method, requires_confirmation, requires_action and "
             "requires_capture, and from processing in rare cases.",
     "offline": "cancel rejects every parameter; no cancellation_reason, no event.",
     "lab": "cancel_payment_intent() sends the reason in test mode only; the order keeps its "
            "own cancellation_reason either way."},
    {"topic": "Payment method types",
     "real": "Automatic payment methods on by default; the Payment Element may then offer "
             "methods that redirect or settle days later (status processing); server-side "
             "confirm needs return_url or allow_redirects=never.",
     "offline": "Cards only; rejects automatic_payment_methods, allowed_payment_method_types "
                "and return_url.",
     "lab": "Cards only in both modes: in test mode create also sends "
            "allowed_payment_method_types=['card'] (the pinned API version's parameter; "
            "mypy checks it), so no payment waits in processing; confirm also sends a "
            "return_url. Offline, create sends only amount, currency and metadata."},
    {"topic": "Stripe.js version",
     "real": "Versioned by release name since 2025: js.stripe.com/endive/stripe.js is the "
             "Stripe.js paired with API 2026-10-28.endive; js.stripe.com/v3 is the older, "
             "unversioned one.",
     "offline": "The stand-in serves an old v3-style mock at /js.stripe.com/v3/.",
     "lab": "The checkout page loads js.stripe.com/endive/stripe.js in test mode "
            "(gateway.STRIPE_JS_URL); the React shop's @stripe/stripe-js 10.2.1 loads the "
            "same release."},
    {"topic": "Refunds",
     "real": "Refund create checks the amount against what is left; sends charge.refunded "
             "and refund.created / refund.updated events; honours Idempotency-Key.",
     "offline": "Creates Refunds (any amount, over-refunds included), ignores "
                "Idempotency-Key, sends no refund events.",
     "lab": "The server checks the amount itself before asking, settles the order from the "
            "Refund it gets back, and `trigger charge.refunded --order ID` plays the event."},
    {"topic": "Disputes",
     "real": "The test card 4000 0000 0000 0259 is disputed (fraudulent) after it succeeds; "
             "charge.dispute.created arrives; evidence is due by a deadline.",
     "offline": "No disputes at all: no Dispute objects, no events.",
     "lab": "The server flags the order disputed on a verified charge.dispute.created; the "
            "tests sign such events themselves, shaped like real Stripe's."},
    {"topic": "Validation and errors",
     "real": "Strict: unknown currency or parameter is an error with a precise message and param.",
     "offline": "Loose (currency 'xxx' accepted); messages are generic, no param.",
     "lab": "The server validates its own input before calling Stripe."},
    {"topic": "Persistence",
     "real": "Test-mode data stays until you delete it in the Dashboard.",
     "offline": "Started empty by each lab; payments from an earlier run are gone.",
     "lab": "At start the lab cancels unpaid orders whose PaymentIntent vanished, and says so."},
]

DIFFERENCE_COLUMNS = {"topic": "topic", "real": "real Stripe (test mode)",
                      "offline": "offline stand-in", "lab": "what the lab does"}


def differences_markdown() -> str:
    """OFFLINE_DIFFERENCES as a Markdown table (notebook 00 shows exactly this)."""
    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "\\|")

    rows = ["| " + " | ".join(DIFFERENCE_COLUMNS.values()) + " |",
            "|" + "---|" * len(DIFFERENCE_COLUMNS)]
    rows += ["| " + " | ".join(cell(entry[key]) for key in DIFFERENCE_COLUMNS) + " |"
             for entry in OFFLINE_DIFFERENCES]
    return "\n".join(rows)


# How long complete_3ds_offline waits, in test mode, for the customer to complete the
# challenge in the browser (seconds; TUTORIAL_3DS_WAIT changes it, 0 moves on at once).
THREE_DS_WAIT = 60.0

# FOR THE PACKAGE'S OWN TESTS: the Stripe API address in test mode, so the test-mode notebooks
# can run against a local HTTP stand-in of api.stripe.com (tests/stripe_api_mock.py), which
# cannot be reached from CI. Honoured only with a test-mode key and a loopback address, so a
# key is never sent anywhere but api.stripe.com or this machine. Learners never set it.
TEST_API_BASE_VARIABLE = "TUTORIAL_STRIPE_API_BASE"


def test_api_base(settings: Settings) -> str | None:
    url = (os.environ.get(TEST_API_BASE_VARIABLE) or "").strip().rstrip("/")
    if not url or settings.offline or not settings.secret_key.startswith(("sk_test_", "rk_test_")):
        return None
    from .lab import is_loopback
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not is_loopback(parts.hostname or ""):
        raise ValueError(f"{TEST_API_BASE_VARIABLE} must be an http://127.0.0.1:PORT address "
                         "(a stand-in for api.stripe.com on this machine, for tests).")
    return url


def payment_intent_idempotency_key(order_id: str, attempt: int | None = None) -> str:
    """Derived from the order (and, for a fresh PaymentIntent after a failed one, the attempt
    number), so a retried create can never charge the order twice."""
    key = f"{order_id}-create-payment-intent"
    return key if attempt is None else f"{key}-attempt-{attempt}"


class StripeGateway:
    def __init__(self, settings: Settings, backend_url: str | None = None,
                 http_client: stripe.HTTPClient | None = None) -> None:
        self.offline = settings.offline
        base_addresses: dict[str, str] = {}
        if self.offline:
            if not backend_url:
                raise ValueError("offline mode needs the offline backend's URL")
            base_addresses["api"] = backend_url
        elif (test_base := test_api_base(settings)) is not None:
            base_addresses["api"] = test_base  # the package's own tests only (see test_api_base)
        self.backend_url = backend_url
        # Where a learner pays an order in the browser (the lab's checkout page), if known:
        # notebook.Lab sets it, so test-mode 3-D Secure can point there.
        self.checkout_url: Any = None
        if self.offline and http_client is None:
            # One keep-alive connection pool to the stand-in, shared by the server's threads;
            # it is on this machine, so proxy settings from the environment never apply.
            session = requests.Session()
            session.trust_env = False
            http_client = stripe.RequestsClient(session=session)
        self.client = stripe.StripeClient(
            settings.secret_key,
            stripe_version=API_VERSION,
            base_addresses=base_addresses,  # type: ignore[arg-type]
            # The stand-in answers at once or not at all; retries only slow failures down.
            max_network_retries=0 if self.offline else 2,
            # Wrapped in a recorder when TUTORIAL_RECORD_STRIPE_REQUESTS is set (the tests do):
            # every request is then checked against stripe-python's typed params.
            http_client=stripe_recorder.from_environment(http_client),
        )

    def create_payment_intent(self, order: Any) -> dict:
        """Create the PaymentIntent that will collect this order's amount."""
        intent = self.client.v1.payment_intents.create(
            params=self._cards_only(_payment_intent_params(order)),
            options={"idempotency_key": payment_intent_idempotency_key(order["id"])},
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

    def retrieve_payment_intent(self, payment_intent_id: str) -> dict:
        intent = self.client.v1.payment_intents.retrieve(payment_intent_id)
        return self.normalize(intent.to_dict())

    def cancel_payment_intent(self, payment_intent_id: str, reason: str | None = None) -> dict:
        """Cancel the PaymentIntent, so that no payment can succeed on it any more.

        `reason`: Stripe's cancellation_reason (e.g. "abandoned"), sent in test mode only.
        Stripe refuses (InvalidRequestError) when the PaymentIntent already succeeded, is
        already canceled, or is processing; the caller re-reads it to learn which.
        """
        if self.offline or reason is None:
            # The offline stand-in rejects every parameter of cancel, cancellation_reason included.
            intent = self.client.v1.payment_intents.cancel(payment_intent_id)
        else:
            intent = self.client.v1.payment_intents.cancel(
                payment_intent_id, params={"cancellation_reason": reason})
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

    # --- step 5, played from the server side (notebooks and tests play the customer) ----------

    def pay_with_test_card(self, payment_intent_id: str, scenario: str = "success") -> dict:
        """Confirm the PaymentIntent with a test card, as the customer's browser would.

        scenario: "success", "declined" or "3ds" (3-D Secure required). A declined card does
        not raise: the PaymentIntent comes back with status requires_payment_method and
        last_payment_error set, exactly what the customer's page would show.
        """
        return self.confirm_payment_intent(payment_intent_id, self.test_payment_method(scenario),
                                           return_url="http://localhost:4242/checkout/complete")

    def test_payment_method(self, scenario: str) -> str:
        if scenario not in TEST_CARDS:
            raise ValueError(f"scenario must be one of {sorted(TEST_CARDS)}")
        card = TEST_CARDS[scenario]
        if not self.offline:
            return card["real"]
        if card["offline_number"] is None:
            return card["real"]
        method = self.client.v1.payment_methods.create(params={
            "type": "card",
            "card": {"number": card["offline_number"], "exp_month": 12, "exp_year": 2034,
                     "cvc": "123"},
        })
        return method.id

    def complete_3ds_offline(self, payment_intent_id: str, approve: bool,
                             wait: float | None = None) -> dict:
        """The customer approves or fails the 3-D Secure challenge.

        Offline, the stand-in's private route plays the customer. Real Stripe has no such call:
        in test mode this prints where the customer completes the challenge in the browser,
        waits up to `wait` seconds for it, and returns the PaymentIntent as it then is (still
        requires_action if nobody completed it: the notebook moves on).
        """
        if not self.offline:
            if wait is None:
                wait = float(os.environ.get("TUTORIAL_3DS_WAIT") or THREE_DS_WAIT)
            return self._wait_for_3ds_in_browser(payment_intent_id, approve, wait)
        intent = self.client.v1.payment_intents.retrieve(payment_intent_id)
        self.client.raw_request(
            "post", f"/v1/payment_intents/{payment_intent_id}/_authenticate",
            client_secret=intent.client_secret, success="true" if approve else "false")
        return self.retrieve_payment_intent(payment_intent_id)

    def _wait_for_3ds_in_browser(self, payment_intent_id: str, approve: bool,
                                 wait: float) -> dict:
        import time

        intent = self.retrieve_payment_intent(payment_intent_id)
        if intent.get("status") != "requires_action":
            print(f"3-D Secure: nothing to complete, {payment_intent_id} is {intent.get('status')}.")
            return intent
        # With a return_url (pay_with_test_card sends one), Stripe's next_action is a page of
        # its own where the test-mode challenge has Complete and Fail buttons.
        redirect = (intent.get("next_action") or {}).get("redirect_to_url") or {}
        order_id = (intent.get("metadata") or {}).get("order_id")
        if redirect.get("url"):
            where = f"open {redirect['url']} and click {'Complete' if approve else 'Fail'}"
        elif self.checkout_url and order_id:
            where = (f"pay a new order on the checkout page ({self.checkout_url(order_id)}) "
                     f"with the card {TEST_CARDS['3ds']['card']}")
        else:
            where = f"complete next_action {intent.get('next_action')} with Stripe.js"
        print(f"3-D Secure in test mode happens in the customer's browser: {where} "
              f"(waiting up to {wait:.0f} s, then this moves on).", flush=True)
        deadline = time.monotonic() + wait
        while intent.get("status") == "requires_action" and time.monotonic() < deadline:
            time.sleep(2.0 if wait > 10 else 0.25)
            intent = self.retrieve_payment_intent(payment_intent_id)
        if intent.get("status") == "requires_action":
            print("Not completed yet: the PaymentIntent still requires_action. Moving on; "
                  "run this cell again once the challenge is done.")
        return intent

    # --- step 5 from the checkout page (checkout.py): the browser tokenizes, the server confirms

    def stripe_js_url(self) -> str:
        """Where the checkout page loads Stripe.js from.

        Offline: a path on this server (stripe_js_proxy), which passes the stand-in's mock
        Stripe.js on. The mock calls the API it was loaded from, so the page then talks to its
        own origin only: from a classmate's laptop (127.0.0.1 would be their own machine, and
        Chromium blocks it) and behind JupyterHub's proxy (the path follows the page's prefix).
        """
        if not self.offline:
            return STRIPE_JS_URL
        from .stripe_js_proxy import STRIPE_JS_PATH
        return STRIPE_JS_PATH

    def stripe_js_sources(self) -> dict[str, list[str]]:
        """What the checkout page's Content-Security-Policy must allow for Stripe.js."""
        if self.offline:
            # The mock Stripe.js and its API calls come from this server ('self').
            return {"script-src": [], "connect-src": [], "frame-src": []}
        # Real Stripe.js: its script, its API, the Payment Element's and 3-D Secure's iframes.
        return {"script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
                "connect-src": ["https://api.stripe.com"],
                "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com",
                              "https://hooks.stripe.com"]}

    def payment_method_from_token(self, token_id: str) -> str:
        """The payment method for a card the browser tokenized with Stripe.js (createToken).

        Raises stripe.InvalidRequestError when Stripe does not know the token.
        """
        if self.offline:
            # The stand-in cannot make a PaymentMethod from a token; it charges the token's
            # card (card_...) directly, the way older Stripe integrations did.
            card = self.client.v1.tokens.retrieve(token_id).card
            if card is None:
                raise stripe.InvalidRequestError(f"{token_id} is not a card token.", "token")
            return card.id
        method = self.client.v1.payment_methods.create(
            params={"type": "card", "card": {"token": token_id}})
        return method.id

    def confirm_payment_intent(self, payment_intent_id: str, payment_method: str,
                               return_url: str) -> dict:
        """Confirm on the server with the customer's payment method.

        Like pay_with_test_card, a decline does not raise: the PaymentIntent comes back with
        status requires_payment_method and last_payment_error set. 3-D Secure leaves it in
        requires_action; the customer's browser then shows the challenge.
        """
        try:
            if self.offline:
                # The stand-in cannot take payment_method in confirm itself: set it first.
                self.client.v1.payment_intents.update(
                    payment_intent_id, params={"payment_method": payment_method})
                self.client.v1.payment_intents.confirm(payment_intent_id)
            else:
                self.client.v1.payment_intents.confirm(
                    payment_intent_id,
                    params={"payment_method": payment_method, "return_url": return_url})
        except stripe.CardError:
            pass  # the decline is recorded on the PaymentIntent, read below
        return self.retrieve_payment_intent(payment_intent_id)

    def accepts_another_card(self, intent: dict) -> bool:
        """Can the customer try this PaymentIntent again with another card?"""
        if intent.get("status") not in ("requires_payment_method", "requires_confirmation",
                                        "requires_action"):
            return False  # succeeded, processing or canceled: nothing left to try
        if not self.offline:
            return True
        # The stand-in keeps a declined charge on its PaymentIntent for good, and a
        # PaymentIntent waiting for 3-D Secure cannot take another card.
        return intent["status"] != "requires_action" and not intent.get("latest_charge")

    def create_retry_payment_intent(self, order: Any, attempt: int) -> dict:
        """A fresh PaymentIntent for an order whose PaymentIntent cannot take another card
        (offline, after a decline). The key is derived from the order and the attempt number,
        so retrying this call cannot create two PaymentIntents for one attempt."""
        intent = self.client.v1.payment_intents.create(
            params=self._cards_only(_payment_intent_params(order, attempt=attempt)),
            options={"idempotency_key": payment_intent_idempotency_key(order["id"], attempt)},
        )
        return self.normalize(intent.to_dict())


def _payment_intent_params(order: Any, attempt: int | None = None) -> PaymentIntentCreateParams:
    """Amount and currency from the order (never from the client), and the order's identity in
    metadata so every event about this PaymentIntent leads back to the order."""
    metadata = {"order_id": order["id"], "product": order["product_id"],
                "quantity": str(order["quantity"]), "customer": order["customer"]}
    if attempt is not None:
        metadata["attempt"] = str(attempt)
    return {"amount": order["amount"], "currency": order["currency"], "metadata": metadata}


# Test cards per scenario: the PaymentMethod real test mode accepts, and the raw test card
# number the offline stand-in needs instead (None: the pm_card_ id works offline too).
TEST_CARDS: dict[str, dict[str, Any]] = {
    "success": {"card": "4242 4242 4242 4242", "real": "pm_card_visa", "offline_number": None},
    "declined": {"card": "4000 0000 0000 0341", "real": "pm_card_chargeCustomerFail",
                 "offline_number": None},
    # pm_card_authenticationRequired is this card (4000 0025 0000 3155 is the one that asks
    # only when a card is saved for later, pm_card_authenticationRequiredOnSetup).
    "3ds": {"card": "4000 0027 6000 3184", "real": "pm_card_authenticationRequired",
            "offline_number": "4000002760003184"},
}


class PaymentRefused(stripe.InvalidRequestError):
    """Stripe refused to take a payment on a PaymentIntent in its current state, with a
    message that says what happened and what to do (the offline stand-in says "Bad request")."""


def refusal_message(intent: dict, offline: bool) -> str:
    """One line for a learner: why a PaymentIntent in this state cannot take a payment now,
    and what to do instead."""
    status = intent.get("status")
    if status == "succeeded":
        return ("this PaymentIntent has already succeeded: the order is paid, so there is "
                "nothing left to pay; create a new order to pay again.")
    if status == "canceled":
        return ("this PaymentIntent was canceled (so was its order): it can't take a payment "
                "any more; create a new order.")
    if status == "processing":
        return "this PaymentIntent is already processing a payment: wait for its outcome."
    if status == "requires_action":
        return ("this PaymentIntent is waiting for its 3-D Secure challenge: complete or fail "
                "the challenge first" + (" (lab.complete_3ds)" if offline else " in the browser")
                + ", or create a new order.")
    if offline and intent.get("latest_charge"):
        return ("a declined PaymentIntent can't take another card offline (real Stripe lets "
                "it): run the cell again for a new order, or pay on the checkout page, which "
                "gives the order a fresh PaymentIntent.")
    return f"Stripe refused to confirm this PaymentIntent in status {status}."
