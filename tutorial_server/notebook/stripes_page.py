"""The customer on Stripe's hosted Checkout page, without a browser (notebook 09).

Offline, the lab plays Stripe's page (lab/hosted_checkout.py). This does what a person's browser
does there, through the same HTTP routes: open the page, turn a test card into a token with the
mock Stripe.js's call (through the lab's /offline-stripe/ relay, from the page's origin), send
the token to the page's /pay route, answer the 3-D Secure challenge the way the mock's dialog
does, and read how the payment stands. So it works on a lab of your own and, as a learner, on a
class server's lab (whose offline Stripe you cannot reach): it needs only the lab's URL.

In test mode Stripe's real page needs a person: this prints where to go and changes nothing.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from ..checkout import TEST_CARDS
from ..config import OFFLINE_PUBLISHABLE_KEY

TIMEOUT = 15


class StripesPageRefused(RuntimeError):
    """The lab's hosted page refused: unknown, expired or already paid session, or bad input.
    `status` is the HTTP status, `error` Stripe's error object."""

    def __init__(self, status: int, error: dict) -> None:
        super().__init__(f"{error.get('message') or 'refused'} (HTTP {status})")
        self.status, self.error = status, error


def _session_id(session: str | dict) -> str:
    if isinstance(session, dict):
        session = session.get("id") or ""
    if not isinstance(session, str) or not session.startswith("cs_"):
        raise ValueError("session: a Checkout Session id (cs_...) or the checkout_session the "
                         "order's answer carries")
    return session


def _check(answer: requests.Response) -> dict:
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200:
        error = body.get("error") if isinstance(body, dict) else None
        raise StripesPageRefused(answer.status_code, error if isinstance(error, dict) else {})
    return body


def pay_on_stripes_page(lab: Any, session: str | dict, scenario: str = "success",
                        approve: bool = True) -> dict | None:
    """Pay a Checkout Session on the lab's stand-in for Stripe's hosted page, as its customer.

    lab: a LabClient (`connect()`), or the lab's URL. session: the session's id, or the
    `checkout_session` of POST /api/orders's answer. scenario: "success", "declined" or "3ds"
    (the test cards of the checkout page); with "3ds", approve=True completes the challenge,
    False fails it. Returns the page's answer: {"session": {id, status}, "payment_intent":
    {id, status, last_payment_error}, "next_url"} (next_url: the success_url, once paid). A
    decline or a failed challenge does not raise: the answer says it, as the page would; a new
    call pays again (the same PaymentIntent, another card). Raises StripesPageRefused when the page refuses
    (unknown, expired or paid session: a 404 or a 409).

    The order is settled by Stripe's webhook a moment later, not by this call.
    """
    session_id = _session_id(session)
    if scenario not in TEST_CARDS:
        raise ValueError(f"scenario must be one of {sorted(TEST_CARDS)}")
    if not isinstance(lab, str) and getattr(lab, "mode", "offline") != "offline":
        url = session.get("url") if isinstance(session, dict) else None
        print(f"Test mode: Stripe's real hosted page takes the card in a browser: open "
              f"{url or 'the session url'} and pay with {TEST_CARDS[scenario]['card']}.")
        return None
    base = (lab if isinstance(lab, str) else lab.url).rstrip("/")
    page_url = f"{base}/offline-checkout/{session_id}"
    http = requests.Session()
    http.trust_env = False
    # The page's own requests name its origin (the relay takes nothing from another).
    http.headers["Origin"] = "{0.scheme}://{0.netloc}".format(urlsplit(base))
    opened = http.get(page_url, timeout=TIMEOUT)
    if opened.status_code != 200:
        raise StripesPageRefused(opened.status_code, {
            "message": "the hosted page has no open Checkout Session " + session_id[:24]
            + "… (unknown, expired or already paid)"})
    card = TEST_CARDS[scenario]
    token = _check(http.post(f"{base}/offline-stripe/v1/tokens", timeout=TIMEOUT, data={
        "card[number]": card["offline_number"] or card["card"].replace(" ", ""),
        "card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123",
        "key": OFFLINE_PUBLISHABLE_KEY}))["id"]
    answer = _check(http.post(f"{page_url}/pay", json={"token": token}, timeout=TIMEOUT))
    intent = answer["payment_intent"]
    if intent["status"] == "requires_action":  # the mock's challenge dialog, answered
        _check(http.post(f"{base}/offline-stripe/v1/payment_intents/{intent['id']}/_authenticate",
                         params={"success": "true" if approve else "false"}, timeout=TIMEOUT,
                         json={"key": OFFLINE_PUBLISHABLE_KEY,
                               "client_secret": intent["client_secret"]}))
        answer = _check(http.get(f"{page_url}/status", timeout=TIMEOUT))
    answer["payment_intent"].pop("client_secret", None)  # never shown in a notebook
    return answer
