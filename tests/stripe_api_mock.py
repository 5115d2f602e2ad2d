"""A MOCK of api.stripe.com, for tests only: real Stripe cannot be reached from here.

It answers the few calls the notebooks and the lab make in test mode (PaymentIntent create,
retrieve, list, update, confirm, cancel; PaymentMethod from a token; Event list and retrieve;
Refund create, list and retrieve, which check the amount left as Stripe does and send
refund.created and charge.refunded; Charge retrieve; Checkout Session create, retrieve, expire
and line items, never paid: that takes a person on Stripe's page)
with objects built on real Stripe's examples (shared/reference/stripe-openapi-fixtures3.json,
Stripe's OpenAPI fixtures), and with the statuses each test card gives in test mode:

    pm_card_visa                      -> succeeded
    pm_card_chargeCustomerFail, ...   -> 402 card_error, PaymentIntent requires_payment_method
    pm_card_authenticationRequired    -> requires_action, next_action redirect_to_url; the
                                         "customer" completes the challenge in the browser
                                         `three_ds_delay` seconds later (None: never)

Like `stripe listen --forward-to`, it delivers each event it creates to `forward_to`, signed
with `webhook_secret`. Every request is kept in `requests` (method, path), so a test can assert
that nothing offline-only (`/_config/...`, `.../_authenticate`) was ever asked of "Stripe".
It is deliberately small: what it does not know answers 404 in Stripe's error shape.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from tutorial_server.gateway import API_VERSION

SUCCEEDS = {"pm_card_visa", "pm_card_mastercard"}
DECLINES = {"pm_card_chargeCustomerFail", "pm_card_visa_chargeDeclined",
            "pm_card_chargeDeclined", "pm_card_visa_chargeDeclinedInsufficientFunds"}
NEEDS_3DS = {"pm_card_authenticationRequired", "pm_card_threeDSecure2Required"}


def _nest(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (metadata[order_id]=...) back into a dict."""
    out: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        target = out
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return out


class StripeApiMock:
    def __init__(self, examples: dict, webhook_secret: str, three_ds_delay: float | None = 0.5):
        self.examples = examples
        self.webhook_secret = webhook_secret
        self.three_ds_delay = three_ds_delay
        self.forward_to: str | None = None
        self.requests: list[tuple[str, str]] = []
        self.unknown: list[tuple[str, str]] = []  # calls this mock (or Stripe) does not know
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.sessions: dict[str, dict] = {}
        self.events: list[dict] = []  # oldest first
        self.replays: dict[str, tuple[int, dict]] = {}  # Idempotency-Key -> first answer
        self.lock = threading.RLock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, method: str) -> None:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                params = _nest(urllib.parse.parse_qsl(body if method == "POST" else url.query))
                with mock.lock:
                    mock.requests.append((method, url.path))
                    key = self.headers.get("Idempotency-Key") if method == "POST" else None
                    if key and key in mock.replays:
                        status, answer = mock.replays[key]
                    else:
                        status, answer = mock.route(method, url.path, params)
                        if key:
                            mock.replays[key] = (status, answer)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_" + secrets.token_hex(7))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def do_DELETE(self):
                self._answer("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "StripeApiMock":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- objects, on real Stripe's examples --------------------------------------------------
    def _intent(self, params: dict) -> dict:
        intent = copy.deepcopy(self.examples["payment_intent"])
        pid = "pi_" + secrets.token_hex(12)
        intent.update(id=pid, client_secret=f"{pid}_secret_{secrets.token_hex(12)}",
                      amount=int(params["amount"]), currency=params["currency"],
                      metadata=params.get("metadata", {}), created=int(time.time()),
                      status="requires_payment_method", amount_received=0, canceled_at=None,
                      last_payment_error=None, next_action=None, latest_charge=None,
                      payment_method=None, processing=None, transfer_data=None,
                      payment_method_configuration_details=None, amount_details={})
        return intent

    def _event(self, event_type: str, intent: dict) -> None:
        event = copy.deepcopy(self.examples["event"])
        event.update(id="evt_" + secrets.token_hex(12), type=event_type, created=int(time.time()),
                     api_version=API_VERSION, livemode=False, pending_webhooks=1,
                     data={"object": copy.deepcopy(intent)},
                     request={"id": "req_" + secrets.token_hex(7), "idempotency_key": None})
        self.events.append(event)
        if self.forward_to:
            threading.Thread(target=self._deliver, args=(event,), daemon=True).start()

    def _deliver(self, event: dict) -> None:
        """What `stripe listen --forward-to` does: POST the event, signed, to the lab."""
        payload = json.dumps(event)
        timestamp = int(time.time())
        mac = hmac.new(self.webhook_secret.encode(), f"{timestamp}.{payload}".encode(),
                       hashlib.sha256).hexdigest()
        try:
            requests.post(self.forward_to, data=payload.encode(), timeout=10,
                          headers={"Content-Type": "application/json",
                                   "Stripe-Signature": f"t={timestamp},v1={mac}"})
        except requests.RequestException:
            pass  # like Stripe, one lost delivery is not the sender's problem

    @staticmethod
    def _error(status: int, message: str, **fields) -> tuple[int, dict]:
        error = {"type": "invalid_request_error", "message": message, **fields}
        return status, {"error": error}

    # --- the API ---------------------------------------------------------------------------
    def route(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "payment_intents"]:
            if len(parts) == 2 and method == "POST":
                intent = self._intent(params)
                self.intents[intent["id"]] = intent
                self._event("payment_intent.created", intent)
                return 200, intent
            if len(parts) == 2 and method == "GET":
                data = sorted(self.intents.values(), key=lambda i: -i["created"])
                return 200, {"object": "list", "data": data, "has_more": False,
                             "url": "/v1/payment_intents"}
            intent = self.intents.get(parts[2])
            if intent is None:
                return self._error(404, f"No such payment_intent: '{parts[2]}'",
                                   code="resource_missing", param="intent")
            action = parts[3] if len(parts) > 3 else None
            if action is None and method == "GET":
                return 200, intent
            if action is None and method == "POST":
                if "amount" in params:
                    intent["amount"] = int(params["amount"])
                intent["metadata"].update(params.get("metadata", {}))
                if "payment_method" in params:
                    intent["payment_method"] = params["payment_method"]
                return 200, intent
            if action == "confirm" and method == "POST":
                return self._confirm(intent, params)
            if action == "cancel" and method == "POST":
                if intent["status"] in ("succeeded", "canceled"):
                    return self._error(400, "You cannot cancel this PaymentIntent because it has "
                                       f"a status of {intent['status']}.",
                                       code="payment_intent_unexpected_state")
                intent.update(status="canceled", canceled_at=int(time.time()), next_action=None,
                              cancellation_reason=params.get("cancellation_reason"))
                self._event("payment_intent.canceled", intent)
                return 200, intent
        if parts[:2] == ["v1", "payment_methods"] and method == "POST":
            method_ = copy.deepcopy(self.examples["payment_method"])
            method_.update(id="pm_" + secrets.token_hex(12), type="card", created=int(time.time()))
            return 200, method_
        if parts[:2] == ["v1", "refunds"]:
            if len(parts) == 2 and method == "POST":
                return self._refund(params)
            if len(parts) == 2 and method == "GET":
                data = sorted((r for r in self.refunds.values()
                               if params.get("payment_intent") in (None, r["payment_intent"])),
                              key=lambda r: (-r["created"], r["id"]))
                return 200, {"object": "list", "data": data, "has_more": False,
                             "url": "/v1/refunds"}
            if len(parts) == 3 and method == "GET":
                found = self.refunds.get(parts[2])
                return (200, found) if found else self._error(
                    404, f"No such refund: '{parts[2]}'", code="resource_missing", param="id")
        if parts[:2] == ["v1", "charges"] and len(parts) == 3 and method == "GET":
            paid = [i for i in self.intents.values()
                    if i["latest_charge"] == parts[2] and i["status"] == "succeeded"]
            return (200, self._charge(paid[0])) if paid else self._error(
                404, f"No such charge: '{parts[2]}'", code="resource_missing", param="id")
        if parts[:3] == ["v1", "checkout", "sessions"]:
            return self._checkout_session(method, parts[3:], params)
        if parts[:2] == ["v1", "events"]:
            if len(parts) == 3 and method == "GET":
                found = [e for e in self.events if e["id"] == parts[2]]
                return (200, found[0]) if found else self._error(
                    404, f"No such event: '{parts[2]}'", code="resource_missing", param="id")
            if len(parts) == 2 and method == "GET":
                return 200, self._list_events(params)
        self.unknown.append((method, path))
        return self._error(404, f"Unrecognized request URL ({method}: {path}). (This mock of "
                           "api.stripe.com knows only what the lab uses.)")

    def _checkout_session(self, method: str, rest: list[str], params: dict) -> tuple[int, dict]:
        """Create, retrieve, expire and list the line items of a Checkout Session (notebook 09).
        Nobody pays on Stripe's page here: a person would, in a browser."""
        if not rest and method == "POST":
            session = copy.deepcopy(self.examples["checkout.session"])
            items = [params["line_items"][k] for k in sorted(params.get("line_items", {}))]
            total = sum(int(i["price_data"]["unit_amount"]) * int(i["quantity"]) for i in items)
            sid = "cs_test_" + secrets.token_hex(28)
            session.update(id=sid, created=int(time.time()), status="open",
                           payment_status="unpaid", payment_intent=None, amount_total=total,
                           amount_subtotal=total, currency=items[0]["price_data"]["currency"],
                           metadata=params.get("metadata", {}), mode="payment",
                           client_reference_id=params.get("client_reference_id"),
                           success_url=params.get("success_url"),
                           cancel_url=params.get("cancel_url"),
                           url=f"https://checkout.stripe.com/c/pay/{sid}",
                           expires_at=int(time.time()) + 24 * 3600)
            session["_items"] = items
            self.sessions[sid] = session
            return 200, self._public(session)
        session = self.sessions.get(rest[0]) if rest else None
        if session is None:
            return self._error(404, f"No such checkout.session: '{rest[0] if rest else ''}'",
                               code="resource_missing", param="session")
        action = rest[1] if len(rest) > 1 else None
        if action is None and method == "GET":
            return 200, self._public(session)
        if action == "expire" and method == "POST":
            if session["status"] != "open":
                return self._error(400, "Only Checkout Sessions with a status in [open] can be "
                                   "expired.", code="checkout_session_not_open")
            session.update(status="expired", url=None)
            self._event("checkout.session.expired", self._public(session))
            return 200, self._public(session)
        if action == "line_items" and method == "GET":
            data = []
            for item in session["_items"]:
                line = copy.deepcopy(self.examples["item"])
                amount = int(item["price_data"]["unit_amount"]) * int(item["quantity"])
                line.update(id="li_" + secrets.token_hex(12), quantity=int(item["quantity"]),
                            amount_subtotal=amount, amount_total=amount,
                            currency=item["price_data"]["currency"],
                            description=item["price_data"]["product_data"]["name"])
                data.append(line)
            return 200, {"object": "list", "data": data, "has_more": False,
                         "url": f"/v1/checkout/sessions/{session['id']}/line_items"}
        return self._error(404, "Unrecognized request URL.")

    @staticmethod
    def _public(session: dict) -> dict:
        return {k: v for k, v in session.items() if not k.startswith("_")}

    def _list_events(self, params: dict) -> dict:
        newest_first = [e for e in reversed(self.events)
                        if not params.get("type") or e["type"] == params["type"]]
        if params.get("starting_after"):
            ids = [e["id"] for e in newest_first]
            start = ids.index(params["starting_after"]) + 1 if params["starting_after"] in ids else 0
            newest_first = newest_first[start:]
        limit = int(params.get("limit") or 10)
        return {"object": "list", "data": newest_first[:limit],
                "has_more": len(newest_first) > limit, "url": "/v1/events"}

    def _confirm(self, intent: dict, params: dict) -> tuple[int, dict]:
        if intent["status"] not in ("requires_payment_method", "requires_confirmation",
                                    "requires_action"):
            return self._error(400, "This PaymentIntent's status is "
                               f"{intent['status']}; it cannot be confirmed.",
                               code="payment_intent_unexpected_state")
        card = params.get("payment_method") or intent.get("payment_method")
        intent.update(payment_method=card, next_action=None, last_payment_error=None)
        if card in DECLINES:
            charge = "ch_" + secrets.token_hex(12)
            error = {"type": "card_error", "code": "card_declined",
                     "decline_code": "generic_decline", "message": "Your card was declined.",
                     "charge": charge, "doc_url": "https://stripe.com/docs/error-codes/card-declined"}
            intent.update(status="requires_payment_method", latest_charge=charge,
                          last_payment_error=error)
            self._event("payment_intent.payment_failed", intent)
            return 402, {"error": {**error, "payment_intent": intent}}
        if card in NEEDS_3DS:
            intent.update(status="requires_action", next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {"url": f"{self.url}/3ds/{intent['id']}",
                                    "return_url": params.get("return_url")}})
            self._event("payment_intent.requires_action", intent)
            if self.three_ds_delay is not None:
                timer = threading.Timer(self.three_ds_delay, self._customer_authenticates,
                                        args=(intent["id"],))
                timer.daemon = True
                timer.start()
            return 200, intent
        self._succeed(intent)
        return 200, intent

    def _refunded(self, intent: dict) -> int:
        return sum(r["amount"] for r in self.refunds.values()
                   if r["payment_intent"] == intent["id"] and r["status"] == "succeeded")

    def _charge(self, intent: dict) -> dict:
        charge = copy.deepcopy(self.examples["charge"])
        refunded = self._refunded(intent)
        charge.update(id=intent["latest_charge"], amount=intent["amount"],
                      amount_captured=intent["amount"], amount_refunded=refunded,
                      refunded=refunded == intent["amount"], captured=True, paid=True,
                      currency=intent["currency"], payment_intent=intent["id"],
                      metadata=intent["metadata"], status="succeeded", disputed=False,
                      created=intent["created"])
        return charge

    def _refund(self, params: dict) -> tuple[int, dict]:
        intent = self.intents.get(params.get("payment_intent", ""))
        if intent is None:
            return self._error(404, f"No such payment_intent: '{params.get('payment_intent')}'",
                               code="resource_missing", param="payment_intent")
        if intent["status"] != "succeeded":
            return self._error(400, "This PaymentIntent does not have a successful charge to "
                               "refund.", code="charge_not_refundable")
        left = intent["amount"] - self._refunded(intent)
        if left <= 0:
            return self._error(400, f"Charge {intent['latest_charge']} has already been "
                               "refunded.", code="charge_already_refunded")
        amount = int(params.get("amount", left))
        if amount > left:
            return self._error(400, f"Refund amount ({amount}) is greater than unrefunded "
                               f"amount on charge ({left})", param="amount")
        refund = copy.deepcopy(self.examples["refund"])
        refund.update(id="re_" + secrets.token_hex(12), amount=amount,
                      charge=intent["latest_charge"], payment_intent=intent["id"],
                      currency=intent["currency"], status="succeeded", created=int(time.time()),
                      metadata=params.get("metadata", {}))
        self.refunds[refund["id"]] = refund
        self._event("refund.created", refund)
        self._event("charge.refunded", self._charge(intent))
        return 200, refund

    def _succeed(self, intent: dict) -> None:
        intent.update(status="succeeded", amount_received=intent["amount"], next_action=None,
                      latest_charge="ch_" + secrets.token_hex(12), last_payment_error=None)
        self._event("payment_intent.succeeded", intent)

    def _customer_authenticates(self, payment_intent_id: str) -> None:
        """The learner clicks Complete on Stripe's test 3-D Secure page, in their browser."""
        with self.lock:
            intent = self.intents[payment_intent_id]
            if intent["status"] == "requires_action":
                self._succeed(intent)
