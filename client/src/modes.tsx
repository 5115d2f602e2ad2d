// Offline mode and Stripe test mode: EVERY difference between them, and nothing else.
// The rest of the shop (products, the order, the Pay button, waiting for the server) is the
// same code in both modes.
//
//                     test mode (real Stripe)            offline (localstripe's mock Stripe.js)
//   Stripe.js         js.stripe.com, loaded by           /offline-stripe/... on this server,
//                     @stripe/stripe-js's loadStripe      added here, then picked up by loadStripe
//   <Elements>        options {clientSecret}             no options (the mock ignores them)
//   card fields       <PaymentElement />                  <CardElement />, labelled here
//   paying            stripe.confirmPayment: the          stripe.createToken, then the SERVER
//                     browser confirms with Stripe,       confirms (POST /checkout/<id>/confirm);
//                     3-D Secure included, then Stripe    3-D Secure: stripe.confirmCardPayment
//                     sends the browser to return_url
//
// Why offline differs: the mock Stripe.js has no Payment Element and cannot confirm a fresh
// PaymentIntent (gateway.OFFLINE_DIFFERENCES in the server lists the server's side).
import type {ReactElement} from "react";
import {useEffect, useRef} from "react";
import {CardElement, PaymentElement} from "@stripe/react-stripe-js";
import type {Stripe, StripeElements, StripeElementsOptions} from "@stripe/stripe-js";
// The "pure" entry point: importing it loads nothing. The package's main entry injects
// js.stripe.com's script as soon as it is imported (after one tick), which offline would be a
// request the page's Content-Security-Policy refuses, and a console error.
import {loadStripe} from "@stripe/stripe-js/pure";
import {confirmWithToken, syncOrder, type IntentSummary, type Order, type ShopConfig} from "./api";

export type PayOutcome =
  | {kind: "accepted"} // Stripe took the payment: now wait for the SERVER to say "paid"
  | {kind: "declined"; code?: string | null; message?: string | null} // try another card
  // Nothing was charged; the customer can try again. `field`: the id of the first field to fix.
  | {kind: "failed"; message: string; field?: string};

export interface PayRequest {
  stripe: Stripe;
  elements: StripeElements;
  order: Order;
  say: (progress: string) => void;
  returnUrl: string; // where Stripe.js sends the browser after a confirmed payment (test mode)
}

export interface Mode {
  banner: ReactElement;
  loadStripe(config: ShopConfig): Promise<Stripe | null>;
  elementsOptions(clientSecret: string): StripeElementsOptions | undefined;
  PaymentFields: () => ReactElement;
  pay(request: PayRequest): Promise<PayOutcome>;
}

export function modeFor(config: ShopConfig): Mode {
  return config.mode === "offline" ? offline : testMode;
}

// What Stripe says about a PaymentIntent, as the shop's next step.
function outcomeOf(intent: IntentSummary): PayOutcome {
  if (intent.status === "succeeded" || intent.status === "processing") return {kind: "accepted"};
  if (intent.status === "requires_payment_method") {
    return {kind: "declined", ...(intent.last_payment_error ?? {})};
  }
  return {kind: "failed", message: `The payment stopped in an unexpected state (${intent.status}).`
                                   + " Reload the page and try again."};
}

// --- test mode: real Stripe.js, the Payment Element, confirmPayment -------------------------

const testMode: Mode = {
  banner: <p className="mode mode-test" id="mode"><strong>Stripe test mode.</strong> Real
    Stripe, test cards only. No real money moves.</p>,

  // loadStripe adds https://js.stripe.com/<version>/stripe.js to the page, once.
  loadStripe: (config) => loadStripe(config.publishable_key),

  // The Payment Element is drawn for one PaymentIntent: it needs its client secret.
  elementsOptions: (clientSecret) => ({clientSecret}),

  PaymentFields: () => <PaymentElement />,

  async pay({stripe, elements, say, returnUrl}) {
    say("Confirming the payment with Stripe …");
    // On success (3-D Secure included, in Stripe's own frame) Stripe.js takes the browser to
    // return_url, back to this shop, which then asks the server. Reached only if it did not.
    const {error} = await stripe.confirmPayment({elements, confirmParams: {return_url: returnUrl}});
    if (error.type === "card_error") {
      return {kind: "declined", code: error.code, message: error.message};
    }
    return {kind: "failed", message: error.type === "validation_error" && error.message
      ? error.message : `Stripe could not confirm the payment: ${error.message ?? error.type}.`};
  },
};

// --- offline: the mock Stripe.js, a card token, the server confirms ---------------------------

// How loadStripe picks up the mock (read in @stripe/stripe-js's src/shared.ts, loadScript and
// initStripe): when `window.Stripe` is already defined, loadStripe uses it and adds no script
// of its own. Then it calls `Stripe(publishableKey)` (with apply(), so the mock's arrow
// function works where `new Stripe()` would throw), skips `_registerWrapper` (the mock has
// none), and, because the key is a pk_test_ key, compares `Stripe.version` with the release it
// expects ('endive'), warning on the console when they differ. The mock has no version of its
// own: the lab's relay adds the release it stands in for (tutorial_server/lab/stripe_js_relay.py).
function addMockStripeJs(url: string): Promise<void> {
  if ("Stripe" in window) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    // The mock calls the API at the address it was loaded from (document.currentScript), so
    // loaded from this server it talks to this server only (stripe_js_proxy.py).
    script.src = url;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error("the mock Stripe.js did not load"));
    document.head.append(script);
  });
}

// The mock's card element is five bare <input>s named only by placeholders. Label them as
// the checkout page does (checkout-offline.js), and let people type spaces in the number.
// `valid` and `problem`: what Pay checks before sending the card, and how an error names it.
interface CardInput {id: string; label: string; autocomplete: string; max: number; hint: string;
                     valid?: RegExp; problem?: string}
const CARD_INPUTS: Record<string, CardInput> = {
  number: {id: "card-number", label: "Card number", autocomplete: "cc-number", max: 19,
           hint: "4242424242424242", valid: /^\d{16}$/, problem: "the card number (16 digits)"},
  exp_month: {id: "card-exp-month", label: "Expiry month (MM)", autocomplete: "cc-exp-month",
              max: 2, hint: "MM", valid: /^(0?[1-9]|1[0-2])$/,
              problem: "the expiry month (01 to 12)"},
  exp_year: {id: "card-exp-year", label: "Expiry year (YY)", autocomplete: "cc-exp-year",
             max: 2, hint: "YY", valid: /^\d{2}$/, problem: "the expiry year (two digits, YY)"},
  cvc: {id: "card-cvc", label: "CVC", autocomplete: "cc-csc", max: 3, hint: "123",
        valid: /^\d{3}$/, problem: "the CVC (3 digits)"},
  postal_code: {id: "card-postal-code", label: "Postal code (optional)",
                autocomplete: "postal-code", max: 10, hint: ""},
};
const REQUIRED = ["number", "exp_month", "exp_year", "cvc"];

// The mock moves the focus on by itself (16 digits -> month, month -> year, ...), so a person
// who types and then presses Tab, as on any other form, skips a field; pasting, or the
// browser's autofill filling several fields, jumps too. Keep the mock's handler (it records
// the value) and put the focus back wherever it was before: the person moves it, with Tab,
// Shift+Tab or a click, as the checkout page does (checkout-offline.js).
function keepFocusWhereThePersonPutIt(input: HTMLInputElement): void {
  const mockHandler = input.oninput;
  if (typeof mockHandler !== "function") return;
  input.oninput = function (event) {
    const before = document.activeElement;
    mockHandler.call(this, event);
    if (before instanceof HTMLElement && before.isConnected && document.activeElement !== before) {
      before.focus();
    }
  };
}

function labelMockCardInputs(container: HTMLElement): void {
  const note = container.querySelector("span:not(.mock-note)");
  if (note) {
    note.className = "mock-note";
    note.textContent = "Card fields drawn by the mock Stripe.js (localstripe):";
  }
  container.querySelectorAll("input:not([id])").forEach((node) => {
    const input = node as HTMLInputElement;
    const name = input.getAttribute("placeholder") ?? "";
    const field = CARD_INPUTS[name];
    if (!field) return;
    input.id = field.id;
    input.autocomplete = field.autocomplete as AutoFill;
    input.inputMode = name === "postal_code" ? "text" : "numeric";
    input.maxLength = field.max;
    input.placeholder = field.hint;
    keepFocusWhereThePersonPutIt(input);
    if (name !== "postal_code") {
      input.required = true;
      // Fixed since the last Pay: no longer announced as invalid.
      input.addEventListener("input", () => {
        if (input.getAttribute("aria-invalid") === "true" && field.valid?.test(input.value)) {
          input.setAttribute("aria-invalid", "false");
          input.removeAttribute("aria-describedby");
        }
      });
      input.addEventListener("input", () => {
        const digits = input.value.replace(/\D/g, "");
        if (digits !== input.value) {
          input.value = digits;
          input.dispatchEvent(new Event("input")); // the mock reads the value on "input"
        }
      });
    }
    const wrapper = document.createElement("div");
    wrapper.className = `field field-${name}`;
    const label = document.createElement("label");
    label.htmlFor = input.id;
    label.textContent = field.label;
    input.before(wrapper);
    wrapper.append(label, input);
  });
}

// Options for <CardElement> that never change: react-stripe-js calls element.update() when
// they do, and element.off() when an event prop (onChange, onReady, ...) changes or the
// element unmounts. The mock's element has neither method, so: no event props, fixed options.
const CARD_OPTIONS = {};

function OfflineCardFields(): ReactElement {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const container = box.current!;
    // <CardElement> mounts the mock's inputs in its own layout effect; label them as soon as
    // they are there (and again if it ever mounts new ones).
    labelMockCardInputs(container);
    const observer = new MutationObserver(() => labelMockCardInputs(container));
    observer.observe(container, {childList: true, subtree: true});
    return () => observer.disconnect();
  }, []);
  return <div ref={box} className="mock-card"><CardElement options={CARD_OPTIONS} /></div>;
}

function listed(texts: string[]): string {
  return texts.length < 2 ? texts.join("")
    : `${texts.slice(0, -1).join(", ")} and ${texts[texts.length - 1]}`;
}

// The card fields that are empty or not in the form Stripe needs, as an error that names only
// those (in the form's order), each marked aria-invalid and described by the error line; the
// others are marked valid. null when the card can go to Stripe.
function cardProblems(): {message: string; field: string} | null {
  const empty: string[] = [], wrong: string[] = [];
  let first = "";
  for (const name of REQUIRED) {
    const field = CARD_INPUTS[name];
    const input = document.getElementById(field.id) as HTMLInputElement | null;
    if (!input) return {message: "The card fields did not load. Reload the page.", field: ""};
    const bad = !field.valid!.test(input.value);
    input.setAttribute("aria-invalid", String(bad));
    if (bad) input.setAttribute("aria-describedby", "payment-error");
    else input.removeAttribute("aria-describedby");
    if (!bad) continue;
    first ||= field.id;
    (input.value === "" ? empty : wrong).push(field.problem!);
  }
  if (!first) return null;
  const sentences = [];
  if (empty.length) sentences.push(`Enter ${listed(empty)}.`);
  if (wrong.length) sentences.push(`Check ${listed(wrong)}.`);
  return {message: sentences.join(" "), field: first};
}

// The mock's 3-D Secure challenge is a bare <div> it appends to <body>, with two buttons.
// While the challenge is open, make it a modal dialog: a role and a name, the shop behind it
// inert, Escape fails it (as closing Stripe's does). shop.css centres it in the viewport.
async function withChallengeDialog<T>(challenge: () => Promise<T>): Promise<T> {
  const shop = document.getElementById("root");
  const observer = new MutationObserver((changes) => changes.forEach((change) => {
    change.addedNodes.forEach((node) => {
      if (!(node instanceof HTMLDivElement) || node === shop) return;
      const buttons = node.querySelectorAll("button");
      const text = node.querySelector("p");
      if (!text || buttons.length !== 2) return;
      node.className = "challenge";
      text.id = "challenge-text";
      node.setAttribute("role", "dialog");
      node.setAttribute("aria-modal", "true");
      node.setAttribute("aria-labelledby", text.id);
      node.addEventListener("keydown", (event) => {
        if (event.key === "Escape") buttons[1].click();
        if (event.key === "Tab") { // keep the focus on the dialog's two buttons
          event.preventDefault();
          (document.activeElement === buttons[0] ? buttons[1] : buttons[0]).focus();
        }
      });
      if (shop) shop.inert = true;
      if (!node.contains(document.activeElement)) buttons[0].focus();
    });
  }));
  observer.observe(document.body, {childList: true});
  try {
    return await challenge();
  } finally {
    observer.disconnect();
    if (shop) shop.inert = false;
  }
}

const offline: Mode = {
  banner: <p className="mode mode-offline" id="mode"><strong>Offline mode.</strong> Payments go
    to the offline Stripe stand-in (localstripe) that runs with this lab, not to Stripe. No card
    is charged.</p>,

  async loadStripe(config) {
    await addMockStripeJs(config.stripe_js_url);
    return loadStripe(config.publishable_key); // resolves with the mock's Stripe(), see above
  },

  // The mock's elements() takes no options; it only ever draws a card element.
  elementsOptions: () => undefined,

  PaymentFields: OfflineCardFields,

  async pay({stripe, elements, order, say}) {
    const card = elements.getElement(CardElement);
    const problems = cardProblems();
    if (!card || problems) {
      return {kind: "failed", field: problems?.field || undefined,
              message: problems?.message ?? "The card fields did not load. Reload the page."};
    }
    say("Sending the card to Stripe …");
    const tokenized = await stripe.createToken(card);
    if (tokenized.error || !tokenized.token) {
      return {kind: "failed", message: "Stripe could not read this card ("
        + (tokenized.error?.message ?? "no answer") + "). Check the number (16 digits), the "
        + "expiry (MM and YY, in the future) and the CVC (3 digits)."};
    }

    say("Asking the server to confirm the payment …");
    // Errors in the server's shape are thrown as ServerError; the form shows their message.
    let intent = (await confirmWithToken(order.id, tokenized.token.id)).payment_intent;

    if (intent.status === "requires_action" && intent.client_secret) {
      say("Your bank asks for 3-D Secure: answer the challenge to continue.");
      const secret = intent.client_secret;
      const challenge = await withChallengeDialog(() => stripe.confirmCardPayment(secret));
      if (challenge.error || !challenge.paymentIntent) {
        return {kind: "failed", message: "3-D Secure could not be completed ("
          + (challenge.error?.message ?? "no answer") + "). Nothing was charged; try again."};
      }
      if (challenge.paymentIntent.status === "succeeded") return {kind: "accepted"};
      // The stand-in sends no webhook when 3-D Secure fails: ask the server to re-read the
      // PaymentIntent from Stripe and settle the order (it counts the failed attempt).
      say("Asking the server how the payment stands …");
      intent = (await syncOrder(order.id)).payment_intent
        ?? {id: challenge.paymentIntent.id, status: challenge.paymentIntent.status,
            last_payment_error: null};
    }
    return outcomeOf(intent);
  },
};
