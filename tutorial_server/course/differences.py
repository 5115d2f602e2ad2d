"""What the offline stand-in (localstripe) does differently from real Stripe, and what the lab does
about each: one row per difference, its "lab" column naming the code that handles it.

Notebook 00 shows the table (notebook.show_differences), tools/offline_differences.py writes it
to notebooks/offline_differences.md, and tests/test_stripe_fidelity.py checks both are current.
"""
from __future__ import annotations

# Parameters (and endpoints) the gateway sends ONLY to the offline stand-in, on purpose. Every
# other parameter the package sends must be one stripe-python's typed params declare for the
# pinned API version: tests/test_stripe_fidelity.py checks each recorded request against them.
# Each entry is also a row of OFFLINE_DIFFERENCES below (a test checks that too).
OFFLINE_ONLY_PARAMS: dict[tuple[str, str], frozenset[str]] = {
    # localstripe's private route that plays the customer's 3-D Secure challenge. Real Stripe
    # has no such endpoint: the customer authenticates in the browser through Stripe.js.
    # Called only by the customer's side (notebook/customer.py, complete_3ds), and only offline
    # (in test mode it prints where the customer completes the challenge instead).
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
     "lab": "`python -m tutorial_server.lab reconcile` settles orders whose webhook was lost."},
    {"topic": "Event api_version",
     "real": "The webhook endpoint's API version, else the account's default; `stripe listen` "
             "uses the account's default unless given --latest, so it may differ from the "
             "version the lab pins.",
     "offline": "Always 2017-08-15.",
     "lab": "The server reads only fields both versions share, and re-reads the PaymentIntent."},
    {"topic": "Webhook endpoints",
     "real": "Created in the Dashboard (Workbench) or through the API, each with its own "
             "whsec_ secret. `stripe listen` creates none: it forwards the account's events "
             "itself, signed with a secret of its own that stays the same across restarts.",
     "offline": "Registered through a private /_config route; kept in memory only.",
     "lab": "The lab registers its /webhook with the lab's secret at every start."},
    {"topic": "Test cards (server side)",
     "real": "pm_card_visa, pm_card_visa_chargeDeclined (the generic decline, 4000 0000 0000 "
             "0002), pm_card_authenticationRequired (the card 4000 0027 6000 3184), ...",
     "offline": "pm_card_visa works; pm_card_visa_chargeDeclined wrongly succeeds (it declines "
                "0002 only when attached to a customer) and pm_card_authenticationRequired is "
                "unknown.",
     "lab": "Each test scenario maps to what the backend accepts (checkout.TEST_CARDS): "
            "offline, a PaymentMethod from the raw number 4000000000000341 (declined when "
            "charged) for the decline and from 4000002760003184 for 3-D Secure; the checkout "
            "page lists 4000 0000 0000 0341 offline."},
    {"topic": "Confirm with a payment method",
     "real": "`confirm` takes payment_method (and return_url) in one call.",
     "offline": "confirm with payment_method answers 500 Not implemented.",
     "lab": "Offline, the gateway first sets payment_method with an update, then confirms."},
    {"topic": "3-D Secure challenge",
     "real": "The customer completes it in the browser (Stripe.js); there is no API call for it.",
     "offline": "POST /v1/payment_intents/{id}/_authenticate with client_secret and "
                "success=true or false completes it.",
     "lab": "complete_3ds() calls it, offline only. These are the only Stripe API "
            "parameters the lab sends that real Stripe does not know "
            "(differences.OFFLINE_ONLY_PARAMS); the lab's set-up calls to the stand-in's own "
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
            "(checkout.REAL_STRIPE_JS); the React shop's @stripe/stripe-js 10.2.1 loads the "
            "same release."},
    {"topic": "Refunds",
     "real": "Refund create checks the amount against what is left; sends charge.refunded "
             "and refund.created / refund.updated events; honours Idempotency-Key. A refund "
             "can fail later (test card 4000 0000 0000 5126): refund.failed.",
     "offline": "Creates Refunds (any amount, over-refunds included), ignores "
                "Idempotency-Key, sends no refund events; every refund succeeds.",
     "lab": "The server checks the amount itself before asking, settles the order from the "
            "Refund it gets back, and `trigger charge.refunded --order ID` plays the event; "
            "`trigger refund.failed --order ID` makes the latest Refund fail at the stand-in "
            "(lab.fail_refund() in a notebook) and sends refund.failed."},
    {"topic": "Disputes",
     "real": "The test card 4000 0000 0000 0259 is disputed (fraudulent) after it succeeds; "
             "charge.dispute.created arrives; evidence is due by a deadline; "
             "charge.dispute.closed says won or lost.",
     "offline": "No disputes at all: no Dispute objects, no events.",
     "lab": "The server flags the order disputed on a verified charge.dispute.created and "
            "settles it on charge.dispute.closed; `trigger charge.dispute.created` / "
            "`.closed --order ID` play them, shaped like real Stripe's."},
    {"topic": "Validation and errors",
     "real": "Strict: unknown currency or parameter is an error with a precise message and param.",
     "offline": "Loose (currency 'xxx' accepted); messages are generic, no param.",
     "lab": "The server validates its own input before calling Stripe."},
    {"topic": "Persistence",
     "real": "Test-mode data stays until you delete it in the Dashboard.",
     "offline": "Started empty by each lab; payments from an earlier run are gone.",
     "lab": "At start the lab cancels unpaid orders whose PaymentIntent vanished, and says so."},
    {"topic": "Checkout Sessions",
     "real": "Stripe hosts the payment page (checkout.stripe.com) for a session: Prices or "
             "price_data, discounts, tax, shipping, customer details, many payment methods.",
     "offline": "The stand-in has no Checkout at all.",
     "lab": "The stand-in's launcher adds create, retrieve, expire and line items "
            "(lab/stand_in_checkout.py): payment mode, price_data line items, cards only. "
            "The lab plays the hosted page at /offline-checkout/<session> "
            "(lab/hosted_checkout.py), labelled as the lab's, with the checkout page's card "
            "form, test cards, declines and 3-D Secure: the browser tokenizes the card through "
            "/offline-stripe/ and the lab confirms the session's PaymentIntent on Stripe's "
            "behalf (POST /offline-checkout/<session>/pay); \"← back\" goes to the cancel_url. "
            "Notebooks play its customer over the same routes (pay_on_stripes_page). The lab "
            "reads what to pay from the launcher's private "
            "GET /_lab/checkout/sessions/{id}/payment."},
    {"topic": "A Checkout Session's PaymentIntent",
     "real": "Created when the customer submits Stripe's page (payment_intent is null until "
             "then); the same one takes every retry after a decline.",
     "offline": "Backs the session from its creation, and is named from the customer's first "
                "attempt. It takes every retry too: the launcher clears the stand-in's "
                "failed charge (or open challenge) before the next card.",
     "lab": "checkout_sessions.link_intent links the order to the PaymentIntent its session "
            "names, once."},
    {"topic": "checkout.session events",
     "real": "completed (and async_payment_succeeded/failed for methods that settle later) "
             "and expired: at expires_at (24 h by default, 30 min at the least) or when "
             "expired through the API.",
     "offline": "completed when the session's PaymentIntent succeeds; expired when the API "
                "expires it, or when a session past its expires_at is next read; never the "
                "async ones (cards only).",
     "lab": "The server settles from whichever of checkout.session.completed and "
            "payment_intent.succeeded comes first; sync and reconcile read the session."},
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
