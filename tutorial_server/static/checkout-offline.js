/* Offline mode: the mock Stripe.js that the offline Stripe stand-in (localstripe) serves.
   It has no Payment Element and cannot confirm a fresh PaymentIntent, so the route is:
     1. stripe.createToken(card): the card goes from the browser to the (offline) Stripe,
        through this server's /offline-stripe/ path, the page's only origin;
     2. POST /checkout/<order>/confirm {token}: this server confirms the PaymentIntent;
     3. if the bank asks for 3-D Secure, stripe.confirmCardPayment shows the challenge.
   See gateway.OFFLINE_DIFFERENCES in the server code. */
"use strict";

(function () {
  const page = window.Checkout;
  if (!page.stripeReady()) return;

  // The mock's inputs come without labels; give each one a visible label.
  const FIELDS = {
    number: {label: "Card number", autocomplete: "cc-number", max: 19, hint: "4242424242424242"},
    exp_month: {label: "Expiry month (MM)", autocomplete: "cc-exp-month", max: 2, hint: "MM"},
    exp_year: {label: "Expiry year (YY)", autocomplete: "cc-exp-year", max: 2, hint: "YY"},
    cvc: {label: "CVC", autocomplete: "cc-csc", max: 3, hint: "123"},
    postal_code: {label: "Postal code (optional)", autocomplete: "postal-code", max: 10, hint: ""},
  };

  function labelCardInputs(container) {
    const note = container.querySelector("span");
    if (note) {
      note.className = "mock-note";
      note.textContent = "Card fields drawn by the mock Stripe.js (localstripe):";
    }
    container.querySelectorAll("input").forEach((input) => {
      const name = input.getAttribute("placeholder");
      const field = FIELDS[name];
      if (!field) return;
      input.id = "card-" + name.replace("_", "-");
      input.autocomplete = field.autocomplete;
      input.inputMode = name === "postal_code" ? "text" : "numeric";
      input.maxLength = field.max;
      input.placeholder = field.hint;
      if (name !== "postal_code") {
        input.required = true;
        // People type card numbers with spaces; Stripe wants digits only.
        input.addEventListener("input", () => {
          const digits = input.value.replace(/\D/g, "");
          if (digits !== input.value) {
            input.value = digits;
            input.dispatchEvent(new Event("input"));  // let the mock see the cleaned value
          }
        });
      }
      const wrapper = document.createElement("div");
      wrapper.className = "field field-" + name;
      const label = document.createElement("label");
      label.htmlFor = input.id;
      label.textContent = field.label;
      input.before(wrapper);
      wrapper.append(label, input);
    });
  }

  // The mock's 3-D Secure challenge is a bare div appended to <body> with two buttons. Make it
  // a modal dialog for everyone: a role and a name for screen readers, the page behind it
  // inert, the focus inside it, and Escape fails the challenge (as closing Stripe's does).
  // checkout.css places it in the viewport.
  function makeChallengeADialog(box) {
    const text = box.querySelector("p");
    const buttons = box.querySelectorAll("button");
    if (!text || buttons.length !== 2) return;
    box.className = "challenge";
    text.id = "challenge-text";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.setAttribute("aria-labelledby", "challenge-text");
    const behind = [...document.body.children].filter((el) => el !== box && el.tagName !== "SCRIPT");
    behind.forEach((el) => { el.inert = true; });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") buttons[1].click();
    });
    new MutationObserver((changes, observer) => {
      if (!box.isConnected) {  // answered: the mock removed it
        behind.forEach((el) => { el.inert = false; });
        observer.disconnect();
      }
    }).observe(document.body, {childList: true});
    if (!box.contains(document.activeElement)) buttons[0].focus();
  }
  new MutationObserver((changes) => changes.forEach((change) => change.addedNodes.forEach(
    (node) => { if (node.tagName === "DIV") makeChallengeADialog(node); },
  ))).observe(document.body, {childList: true});

  const stripe = Stripe(page.config.publishableKey);
  const card = stripe.elements().create("card");
  const container = document.getElementById("card-element");
  page.clearCardElement();
  card.mount(container);
  labelCardInputs(container);

  function cardFilledIn() {
    return ["number", "exp_month", "exp_year", "cvc"].every(
      (name) => document.getElementById("card-" + name.replace("_", "-")).value !== "");
  }

  page.onSubmit(async () => {
    if (!cardFilledIn()) {
      page.fail("Enter the card number, the expiry month and year, and the CVC.");
      return;
    }
    page.say("Sending the card to Stripe …");
    const tokenized = await stripe.createToken(card);
    if (tokenized.error || !tokenized.token) {
      const why = (tokenized.error && tokenized.error.message) || "no answer";
      page.fail("Stripe could not read this card (" + why + "). Check the number (16 digits), "
                + "the expiry (MM and YY, in the future) and the CVC (3 digits).");
      return;
    }

    page.say("Asking the server to confirm the payment …");
    const answer = await page.post(page.config.confirmUrl, {token: tokenized.token.id});
    if (!answer.ok) {
      const error = answer.body.error || {};
      page.fail(error.message || "The server could not confirm the payment (HTTP "
                + answer.status + "). Nothing was charged; try again.");
      return;
    }
    page.showOrder(answer.body.order);
    let intent = answer.body.payment_intent;

    if (intent.status === "requires_action") {
      page.say("Your bank asks for 3-D Secure: answer the challenge to continue.");
      const challenge = await stripe.confirmCardPayment(intent.client_secret);
      if (challenge.error) {
        page.fail("3-D Secure could not be completed (" + (challenge.error.message || "no answer")
                  + "). Nothing was charged; try again.");
        return;
      }
      if (challenge.paymentIntent.status !== "succeeded") {
        // The stand-in sends no webhook when 3-D Secure fails: ask the server to re-read
        // the PaymentIntent from Stripe and settle the order (POST /api/orders/<id>/sync).
        const synced = await page.post(page.config.syncUrl);
        page.showOrder(synced.body.order);
        intent = synced.body.payment_intent || challenge.paymentIntent;
      } else {
        intent = challenge.paymentIntent;
      }
    }
    page.finish(intent);
  });
})();
