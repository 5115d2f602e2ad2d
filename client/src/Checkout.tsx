// Step 5 from the customer's side: the order the server priced, the card, the Pay button.
// Which Stripe.js calls paying takes depends on the mode (modes.tsx); this file is the same
// in both.
import {useEffect, useRef, useState, type FormEvent, type ReactElement} from "react";
import {Elements, useElements, useStripe} from "@stripe/react-stripe-js";
import type {Stripe} from "@stripe/stripe-js";
import {getOrder, ServerError, type Order} from "./api";
import {formatAmount} from "./money";
import type {Mode, PayOutcome} from "./modes";

interface CheckoutProps {
  stripe: Stripe;
  mode: Mode;
  order: Order;
  productName: string;
  clientSecret: string;
  returnUrl: string;
  // The shop's live region (App.tsx): it stays on screen from Pay to "paid", so what it says
  // is announced even when this form is gone.
  setProgress: (progress: string) => void;
  onAccepted: () => void; // Stripe took the payment: go and ask the server
  onBack: () => void;
}

export function Checkout(props: CheckoutProps): ReactElement {
  const {stripe, mode, order, clientSecret} = props;
  // <Elements> gets the Stripe object itself (already loaded), so the card fields mount on
  // the first render. Test mode's Payment Element belongs to this order's PaymentIntent: a
  // new order gets new Elements (the key).
  return (
    <Elements key={order.id} stripe={stripe} options={mode.elementsOptions(clientSecret)}>
      <PaymentForm {...props} />
    </Elements>
  );
}

function declineMessage(outcome: Extract<PayOutcome, {kind: "declined"}>): string {
  if (outcome.code === "payment_intent_authentication_failure") {
    return "3-D Secure authentication failed, so the bank did not approve the payment. "
      + "Nothing was charged and your order is still open: try again, or use another card.";
  }
  return `Payment declined: ${outcome.message || "The payment did not go through."} Nothing `
    + "was charged and your order is still open: try another card.";
}

function PaymentForm({mode, order: created, productName, returnUrl, setProgress, onAccepted,
                      onBack}: CheckoutProps): ReactElement {
  const stripe = useStripe();
  const elements = useElements();
  const [order, setOrder] = useState(created); // as the server last described it
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const busyNow = useRef(false); // a second click before React re-renders is the same attempt
  const fields = useRef<HTMLDivElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  // Each failed attempt, and the field to fix (an id; "" = the first card field).
  const [failure, setFailure] = useState({count: 0, field: ""});
  const total = formatAmount(order.amount, order.currency);

  // After a decline Stripe's webhook reaches the server a moment later: show the order as the
  // server sees it for a few seconds, so the customer sees it become "attempted".
  async function watchOrder(seconds = 6) {
    const until = Date.now() + seconds * 1000;
    while (Date.now() < until) {
      try {
        const latest = await getOrder(order.id);
        setOrder(latest);
        if (latest.attempts > order.attempts) return;
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  async function pay(event: FormEvent) {
    event.preventDefault();
    if (busyNow.current || !stripe || !elements) return;
    busyNow.current = true;
    setBusy(true);
    setError("");
    let outcome: PayOutcome;
    try {
      outcome = await mode.pay({stripe, elements, order, say: setProgress, returnUrl});
    } catch (err) {
      outcome = {kind: "failed", message: err instanceof ServerError ? err.message
        : `Something went wrong on this page (${String(err)}). Nothing was charged; try again.`};
    }
    busyNow.current = false;
    if (outcome.kind === "accepted") {
      setProgress("Stripe accepted the payment. Now waiting for the server to confirm it …");
      onAccepted();
      return;
    }
    setBusy(false);
    setProgress("");
    setError(outcome.kind === "declined" ? declineMessage(outcome) : outcome.message);
    const field = outcome.kind === "failed" ? outcome.field ?? "" : "";
    setFailure(({count}) => ({count: count + 1, field}));
    if (outcome.kind === "declined") void watchOrder();
  }

  // After Buy: the focus on this form's heading, so a screen reader says where it is and Tab
  // goes on to the card.
  useEffect(() => heading.current?.focus(), []);

  // After a failure, once the form is enabled again: the first field to fix, or else the card
  // number, selected, ready for another card.
  useEffect(() => {
    if (!failure.count) return;
    const named = failure.field && document.getElementById(failure.field);
    const target = (named || fields.current?.querySelector("input")) as HTMLInputElement | null;
    if (!target) return;
    target.focus();
    if (!named) target.select();
  }, [failure]);

  return (
    <section aria-labelledby="checkout-heading" className="checkout">
      <h2 id="checkout-heading" ref={heading} tabIndex={-1}>Pay for your order</h2>
      <dl className="summary">
        <dt>Order</dt><dd id="order-id">{order.id}</dd>
        <dt>Item</dt><dd>{productName} × {order.quantity}</dd>
        {order.discount > 0 && <>
          <dt>Discount</dt><dd>−{formatAmount(order.discount, order.currency)}</dd></>}
        <dt>Total (priced by the server)</dt><dd id="order-total">{total}</dd>
        <dt>Order status (from the server)</dt>
        <dd><span id="order-status">{order.status}</span>, attempts: <span
          id="order-attempts">{order.attempts}</span></dd>
      </dl>
      <form onSubmit={pay} aria-busy={busy} aria-label="Pay by card" noValidate>
        <fieldset disabled={busy}>
          <legend>Card</legend>
          <div ref={fields}><mode.PaymentFields /></div>
        </fieldset>
        <button type="submit" className="pay" disabled={busy || !stripe}>Pay {total}</button>
        <p role="alert" aria-live="assertive" id="payment-error">{error}</p>
      </form>
      <p><button type="button" className="link" onClick={onBack} disabled={busy}>
        Back to the products</button> (nothing expires an unpaid order: it stays open, and <a
        href={`../checkout/${encodeURIComponent(order.id)}`}>its checkout page</a> pays it
        later)</p>
    </section>
  );
}
