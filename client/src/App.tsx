// The shop: the products (step 1), the order the server priced (steps 2-4), paying
// (step 5, Checkout.tsx) and waiting until the SERVER says the order is paid (step 6).
import {useEffect, useRef, useState, type FormEvent, type ReactElement} from "react";
import type {Stripe} from "@stripe/stripe-js";
import {createOrder, getConfig, getProducts, newIdempotencyKey, ServerError, waitUntilPaid,
        type Order, type PayWith, type Product} from "./api";
import {Checkout} from "./Checkout";
import {formatAmount} from "./money";
import {modeFor, type Mode} from "./modes";

type View =
  | {name: "products"}
  | {name: "checkout"; order: Order; clientSecret: string}
  | {name: "waiting"; orderId: string; redirectFailed: boolean};

// ?customer=... picks whose inventory the purchases go to (the API's `customer`; default
// "guest"); ?order=... is where Stripe.js sends the browser back after paying (test mode).
const query = new URLSearchParams(window.location.search);
const CUSTOMER = query.get("customer") || "guest";

function shopAddress(orderId?: string): string {
  const url = new URL("./", window.location.href);
  if (CUSTOMER !== "guest") url.searchParams.set("customer", CUSTOMER);
  if (orderId) url.searchParams.set("order", orderId);
  return url.href;
}

function firstView(): View {
  const orderId = query.get("order");
  if (!orderId) return {name: "products"};
  return {name: "waiting", orderId, redirectFailed: query.get("redirect_status") === "failed"};
}

export function App(): ReactElement {
  const [mode, setMode] = useState<Mode | null>(null);
  const [stripe, setStripe] = useState<Stripe | null>(null);
  const [products, setProducts] = useState<Product[] | null>(null);
  const [loadError, setLoadError] = useState("");
  const [view, setView] = useState<View>(firstView);
  // The shop's live region: progress, then the outcome, from Pay until the server says "paid".
  // It is on every screen, so it is in place before anything is said in it and stays after.
  const [progress, setProgress] = useState("");
  const title = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    (async () => {
      try {
        const [config, list] = await Promise.all([getConfig(), getProducts()]);
        const shopMode = modeFor(config);
        setMode(shopMode);
        setProducts(list);
        try {
          setStripe(await shopMode.loadStripe(config));
        } catch (err) {
          setLoadError(`Stripe.js did not load (${String(err)}), so nothing can be paid. Is `
                       + "the lab running? Reload the page to try again.");
        }
      } catch (err) {
        setLoadError(`Could not reach the shop's server (${String(err)}). Is the lab running?`);
      }
    })();
  }, []);

  const productName = (id: string) => products?.find((p) => p.id === id)?.name ?? id;

  function show(next: View) {
    setView(next);
    if (next.name !== "waiting") setProgress("");
    if (next.name === "products") setTimeout(() => title.current?.focus()); // after the render
    // The address says which order is on screen, so a reload comes back to it.
    window.history.replaceState(null, "",
                                shopAddress(next.name === "waiting" ? next.orderId : undefined));
  }

  return (
    <>
      <header className="site">
        <p className="brand">Stripe payments lab <span className="step">Step 5 in React: the
          shop</span></p>
        {mode?.banner}
      </header>
      <main id="main">
        <h1 ref={title} tabIndex={-1}>Coffee shop</h1>
        {loadError && <p role="alert" className="error">{loadError}</p>}
        {view.name === "products" && (products
          ? <ProductList products={products} canBuy={stripe !== null}
                         onOrdered={(order, clientSecret) =>
                           show({name: "checkout", order, clientSecret})} />
          : !loadError && <p role="status">Loading the products …</p>)}
        {view.name === "checkout" && stripe && mode &&
          <Checkout stripe={stripe} mode={mode} order={view.order}
                    productName={productName(view.order.product)}
                    clientSecret={view.clientSecret} returnUrl={shopAddress(view.order.id)}
                    setProgress={setProgress}
                    onAccepted={() => show({name: "waiting", orderId: view.order.id,
                                            redirectFailed: false})}
                    onBack={() => show({name: "products"})} />}
        {view.name === "waiting" &&
          <Waiting orderId={view.orderId} redirectFailed={view.redirectFailed}
                   productName={productName} setProgress={setProgress}
                   onBack={() => show({name: "products"})} />}
        <p role="status" id="payment-status" className="live">{progress}</p>
      </main>
    </>
  );
}

function ProductList({products, canBuy, onOrdered}: {
  products: Product[]; canBuy: boolean;
  onOrdered: (order: Order, clientSecret: string) => void;
}): ReactElement {
  return (
    <ul className="products">
      {products.map((product) => (
        <li key={product.id}>
          <BuyForm product={product} canBuy={canBuy} onOrdered={onOrdered} />
        </li>
      ))}
    </ul>
  );
}

// Step 1: say what to buy. The server answers with the order it priced (step 2), its
// PaymentIntent's client secret (steps 3 and 4), and never a price the shop could change.
// The other way ("Pay on Stripe's page"): the same order, paid on Stripe's hosted Checkout
// page; the server answers where that page is, and the shop sends the browser there.
function BuyForm({product, canBuy, onOrdered}: {
  product: Product; canBuy: boolean; onOrdered: (order: Order, clientSecret: string) => void;
}): ReactElement {
  const [quantity, setQuantity] = useState("1");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [leaving, setLeaving] = useState(false); // on the way to Stripe's page
  // One Idempotency-Key per attempt, kept until the server has answered it. A second click
  // while the request is on its way is the same attempt (`sending`); pressing Buy again after
  // an answer that never came sends the same key, and the server answers with the order it
  // already made instead of making a second one.
  const attempt = useRef<{key: string; quantity: string; payWith: PayWith} | null>(null);
  const sending = useRef(false);
  const quantityId = `quantity-${product.id}`;

  async function buy(event: FormEvent | null, payWith: PayWith = "payment_intent") {
    event?.preventDefault();
    if (sending.current) return; // the same attempt is already on its way
    let current = attempt.current;
    if (!current || current.quantity !== quantity || current.payWith !== payWith) {
      current = attempt.current = {key: newIdempotencyKey(), quantity, payWith};
    }
    sending.current = true;
    setBusy(true);
    setError("");
    try {
      // The quantity goes as the customer typed it, as a number; the server checks it.
      const answer = await createOrder(product.id, Number(quantity), CUSTOMER, current.key,
                                       payWith);
      attempt.current = null; // answered: the next Buy is a new order
      if (payWith === "checkout_session") {
        const session = answer.checkout_session;
        if (!session || session.status !== "open") throw new ServerError(409, "The server "
          + "could not set up Stripe's page for this order; try again.");
        setLeaving(true);
        window.location.assign(new URL(session.url, window.location.href).href);
        return;
      }
      if (!answer.client_secret) throw new ServerError(409, "The server could not set up a "
                                                       + "payment for this order; try again.");
      onOrdered(answer.order, answer.client_secret);
    } catch (err) {
      if (err instanceof ServerError) {
        attempt.current = null; // the server refused it: nothing was made with that key
        setError(err.message);
      } else {
        setError(`No answer from the server (${String(err)}). Try again: the same request `
                 + "key is sent, so at most one order is made.");
      }
      setBusy(false);
    } finally {
      sending.current = false;
    }
  }

  return (
    <form onSubmit={buy} aria-busy={busy} aria-labelledby={`name-${product.id}`} noValidate>
      <h2 id={`name-${product.id}`}>{product.name}</h2>
      <p>{product.description}</p>
      <p className="price">{formatAmount(product.unit_amount, product.currency)} each</p>
      <label htmlFor={quantityId}>Quantity<span className="visually-hidden"> of {product.name}
        </span></label>
      <input id={quantityId} type="number" inputMode="numeric" min={1} max={100}
             value={quantity} onChange={(e) => setQuantity(e.target.value)} />
      <button type="submit" disabled={busy || !canBuy}>Buy {product.name}</button>
      {" "}
      <button type="button" className="secondary" disabled={busy}
              onClick={() => buy(null, "checkout_session")}>
        Pay on Stripe's page<span className="visually-hidden"> for {product.name}</span>
      </button>
      <p role="status">{leaving ? "Taking you to Stripe's page …"
                        : busy ? "Creating your order …" : ""}</p>
      {error && <p role="alert" className="error">{error}</p>}
    </form>
  );
}

// The order's trace: the lab dashboard's Follow view (its #follow=<order id> form, as in
// tutorial_server/lab/static/dashboard.js), beside /shop/ on the same origin and path prefix.
function traceUrl(orderId: string): string {
  return `../dashboard#follow=${encodeURIComponent(orderId)}`;
}

// Step 6, the client's half: the order is paid when the SERVER says so, after Stripe's signed
// webhook reached it and the amount matched. Stripe.js saying "succeeded" is not enough: the
// browser is the customer's, and anything in it can be changed by them.
function Waiting({orderId, redirectFailed, productName, setProgress, onBack}: {
  orderId: string; redirectFailed: boolean; productName: (id: string) => string;
  setProgress: (progress: string) => void; onBack: () => void;
}): ReactElement {
  const [order, setOrder] = useState<Order | null>(null);
  const [checks, setChecks] = useState(0);
  const [done, setDone] = useState(redirectFailed);
  const [round, setRound] = useState(0);

  useEffect(() => {
    if (redirectFailed) return;
    let stopped = false;
    setDone(false);
    waitUntilPaid(orderId, (latest, n) => {
      if (stopped) return;
      if (latest) setOrder(latest);
      setChecks(n);
    }).then(() => { if (!stopped) setDone(true); });
    return () => { stopped = true; };
  }, [orderId, redirectFailed, round]);

  const paid = order?.status === "paid";
  const heading = paid ? "Payment confirmed: your order is paid"
    : redirectFailed ? "Payment not completed"
    : order?.status === "canceled" ? "This order was canceled"
    : done ? "Payment not confirmed yet" : "Waiting for the server to confirm your payment";

  // Said in the shop's live region (it changes only when the server's answer does, not at
  // every check).
  const amount = order && formatAmount(order.amount, order.currency);
  const said = paid ? `Payment confirmed: order ${orderId} is paid (${amount}).`
    : redirectFailed ? "Payment not completed: Stripe reports that the payment did not go "
      + "through. Nothing was charged."
    : order?.status === "canceled" ? `Order ${orderId} was canceled.`
    : done ? "The server has not confirmed the payment yet: it says the order is "
      + `${order?.status ?? "unknown"}. Do not pay again.`
    : order ? `Waiting for the server to confirm the payment: it says the order is ${order.status}.`
    : "";
  useEffect(() => { if (said) setProgress(said); }, [said, setProgress]);

  // The result heading has the focus from the moment Stripe accepted the payment (the Pay
  // button is gone), so a screen reader reads it and Tab goes on from here.
  const title = useRef<HTMLHeadingElement>(null);
  useEffect(() => title.current?.focus(), []);

  return (
    <section aria-labelledby="outcome-heading" className="waiting">
      <h2 id="outcome-heading" ref={title} tabIndex={-1}>{heading}</h2>
      {redirectFailed && <p>Stripe reports that the payment did not go through. Nothing was
        charged. <a href={`../checkout/${encodeURIComponent(orderId)}`}>Pay this order on the
        checkout page</a>, or go back to the products.</p>}
      {order && <dl className="summary">
        <dt>Order</dt><dd id="order-id">{order.id}</dd>
        <dt>Item</dt><dd>{productName(order.product)} × {order.quantity}</dd>
        <dt>Total</dt><dd id="order-total">{formatAmount(order.amount, order.currency)}</dd>
        <dt>Paid</dt><dd id="order-paid">{formatAmount(order.amount_paid, order.currency)}</dd>
        <dt>Order status (from the server)</dt><dd id="order-status">{order.status}</dd>
      </dl>}
      {paid && <p>What just happened, message by message (steps 1 to 6)? <a id="order-trace"
        href={traceUrl(orderId)}>Follow this order on the lab's dashboard</a>.</p>}
      {!redirectFailed && !paid && <p className="checks">Asked the server {checks}
        {checks === 1 ? " time" : " times"}; it says the order is {order?.status ?? "…"}.</p>}
      {done && !paid && !redirectFailed && order?.status !== "canceled" &&
        <p>Stripe's webhook has not reached the server yet. Do not pay again: <button
          type="button" onClick={() => setRound(round + 1)}>Check again</button></p>}
      <p><button type="button" className="link" onClick={onBack}>Back to the products</button></p>
    </section>
  );
}
