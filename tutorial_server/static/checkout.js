/* The checkout page, both modes: messages, the Pay button, talking to this server.
   Which Stripe.js calls to make is the mode-specific part, in checkout-offline.js (the
   offline stand-in's mock Stripe.js) or checkout-stripe.js (real Stripe.js, test mode).
   No amount is computed here: the page shows the amounts the server formatted. */
"use strict";

window.Checkout = (function () {
  const form = document.getElementById("payment-form");
  const button = document.getElementById("pay-button");
  const statusLine = document.getElementById("payment-status");
  const errorLine = document.getElementById("payment-error");
  // The data-* attributes the server put on the form: publishableKey, clientSecret,
  // confirmUrl, syncUrl, orderUrl, completeUrl.
  const config = form.dataset;
  // The server gives paths; the page makes them absolute against the address it was opened
  // at (the class server's name, or JupyterHub's), which the server does not take from the
  // request. Stripe needs an absolute return_url.
  config.completeUrl = new URL(config.completeUrl, window.location.href).href;
  let busy = false;

  function say(text) {
    statusLine.textContent = text;
  }

  function setBusy(on) {
    busy = on;
    button.disabled = on;
    form.setAttribute("aria-busy", String(on));
  }

  // Show an error (announced: the element is role="alert") and hand the form back, with the
  // focus on the field to fix (`field`), else the card number, and the message in view.
  function fail(text, field) {
    setBusy(false);
    say("");
    errorLine.textContent = text;
    const target = field || form.querySelector("#card-element input");
    document.querySelectorAll("#card-element input").forEach((input) => {
      if (input.getAttribute("aria-invalid") === "true") {
        input.setAttribute("aria-describedby", "payment-error");
      } else {
        input.removeAttribute("aria-describedby");
      }
    });
    if (target) {
      target.focus({preventScroll: true});
      if (!field) target.select();
    }
    // The whole card form and the message on screen: the field is its first line, the error
    // its last (at 1280x720 the message otherwise sits below the window).
    form.scrollIntoView({block: "nearest", behavior: "instant"});
    errorLine.scrollIntoView({block: "nearest", behavior: "instant"});
  }

  function stripeReady() {
    if (typeof window.Stripe === "function") return true;
    fail("Stripe.js did not load, so the card form cannot be shown. Is the lab running? "
         + "Reload the page to try again.");
    button.disabled = true;
    return false;
  }

  function clearCardElement() {
    document.getElementById("card-element").replaceChildren();
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: Object.assign({"Content-Type": "application/json", "Accept": "application/json"},
                             // Class mode: the order's access code, from the link that opened
                             // this page (learners.py); classmates' requests lack it.
                             config.orderAccess ? {"X-Order-Access": config.orderAccess} : {}),
      body: JSON.stringify(body || {}),
    });
    const answer = await response.json().catch(() => ({}));
    return {ok: response.ok, status: response.status, body: answer};
  }

  function showOrder(order) {
    if (!order) return;
    document.getElementById("order-status").textContent = order.status;
    document.getElementById("order-attempts").textContent = String(order.attempts);
  }

  // After a failed attempt, Stripe's webhook reaches the server a moment later: show the
  // order as the server sees it for a few seconds, so the learner sees it become "attempted".
  async function watchOrder(seconds) {
    const until = Date.now() + (seconds || 6) * 1000;
    while (Date.now() < until) {
      try {
        const response = await fetch(config.orderUrl, {cache: "no-store"});
        if (response.ok) showOrder((await response.json()).order);
      } catch (err) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  function failureMessage(error) {
    if (error && error.code === "payment_intent_authentication_failure") {
      return "3-D Secure authentication failed, so the bank did not approve the payment. "
           + "Nothing was charged and your order is still open: try again, or use another card.";
    }
    const reason = (error && error.message) || "The payment did not go through.";
    return "Payment declined: " + reason + " Nothing was charged and your order is still "
         + "open: try another card.";
  }

  // What to do once Stripe has an answer about the PaymentIntent.
  function finish(intent) {
    if (intent.status === "succeeded" || intent.status === "processing") {
      say("Stripe accepted the payment. Now waiting for the server to confirm it …");
      window.location.assign(config.completeUrl);
      return;
    }
    if (intent.status === "requires_payment_method") {
      fail(failureMessage(intent.last_payment_error));
      watchOrder();
      return;
    }
    fail("The payment stopped in an unexpected state (" + intent.status + "). Reload the page "
         + "and try again.");
  }

  // Run the mode's payment steps when the form is submitted (button, or Enter in a field).
  function onSubmit(pay) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (busy) return;
      errorLine.textContent = "";
      setBusy(true);
      try {
        await pay();
      } catch (err) {
        fail("Something went wrong on this page: " + (err && err.message ? err.message : err)
             + ". Nothing was charged; try again.");
      }
    });
  }

  return {config, say, fail, setBusy, stripeReady, clearCardElement, post, showOrder,
          watchOrder, failureMessage, finish, onSubmit};
})();
