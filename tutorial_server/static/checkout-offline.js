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

  // The mock's inputs come without labels; give each one a visible label. No example number
  // as a placeholder: a grey 4242… looks like a card already filled in.
  const FIELDS = {
    number: {label: "Card number", autocomplete: "cc-number", max: 19, hint: "",
             valid: /^\d{16}$/, problem: "the card number (16 digits)"},
    exp_month: {label: "Expiry month (MM)", autocomplete: "cc-exp-month", max: 2, hint: "MM",
                valid: /^(0?[1-9]|1[0-2])$/, problem: "the expiry month (01 to 12)"},
    exp_year: {label: "Expiry year (YY)", autocomplete: "cc-exp-year", max: 2, hint: "YY",
               valid: /^\d{2}$/, problem: "the expiry year (two digits, YY)"},
    cvc: {label: "CVC", autocomplete: "cc-csc", max: 3, hint: "",
          valid: /^\d{3}$/, problem: "the CVC (3 digits)"},
    postal_code: {label: "Postal code (optional)", autocomplete: "postal-code", max: 10, hint: ""},
  };
  const REQUIRED = ["number", "exp_month", "exp_year", "cvc"];

  // The mock moves the focus on by itself (16 digits -> month, and so on), so a person who
  // types and then presses Tab, as on any other form, skips a field and types the month into
  // the year. Keep the mock's handler (it records the value) but put the focus back where the
  // person's typing was: the fields fill in any order, with Tab or a click.
  function keepFocusWhereThePersonPutIt(input) {
    const mockHandler = input.oninput;
    if (typeof mockHandler !== "function") return;
    input.oninput = function (event) {
      const typingHere = document.activeElement === input;
      mockHandler.call(this, event);
      if (typingHere && document.activeElement !== input) input.focus();
    };
  }

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
        // Fixed since the last Pay: no longer announced as invalid.
        input.addEventListener("input", () => {
          if (input.getAttribute("aria-invalid") === "true" && field.valid.test(input.value)) {
            input.setAttribute("aria-invalid", "false");
          }
        });
        // People type card numbers with spaces; Stripe wants digits only.
        input.addEventListener("input", () => {
          const digits = input.value.replace(/\D/g, "");
          if (digits !== input.value) {
            input.value = digits;
            input.dispatchEvent(new Event("input"));  // let the mock see the cleaned value
          }
        });
      }
      keepFocusWhereThePersonPutIt(input);
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
      if (event.key === "Tab") {  // keep the focus on the dialog's two buttons
        event.preventDefault();
        const next = document.activeElement === buttons[0] ? buttons[1] : buttons[0];
        next.focus();
      }
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

  // The card fields that are empty or not in the form Stripe needs, in the page's order;
  // each gets aria-invalid, so a screen reader says which ones to fix.
  function cardProblems() {
    const empty = [], wrong = [];
    REQUIRED.forEach((name) => {
      const input = document.getElementById("card-" + name.replace("_", "-"));
      const bad = !FIELDS[name].valid.test(input.value);
      input.setAttribute("aria-invalid", String(bad));
      if (bad) (input.value === "" ? empty : wrong).push({input, text: FIELDS[name].problem});
    });
    return {empty, wrong, first: [...empty, ...wrong].sort(
      (a, b) => REQUIRED.indexOf(a.input.id.slice(5).replace("-", "_"))
              - REQUIRED.indexOf(b.input.id.slice(5).replace("-", "_")))[0]};
  }

  function listed(problems) {
    const texts = problems.map((p) => p.text);
    return texts.length < 2 ? texts.join("")
      : texts.slice(0, -1).join(", ") + " and " + texts[texts.length - 1];
  }

  page.onSubmit(async () => {
    const problems = cardProblems();
    if (problems.first) {
      const sentences = [];
      if (problems.empty.length) sentences.push("Enter " + listed(problems.empty) + ".");
      if (problems.wrong.length) sentences.push("Check " + listed(problems.wrong) + ".");
      page.fail(sentences.join(" "), problems.first.input);
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
