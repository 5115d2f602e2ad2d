// The merchant server's HTTP API, as the shop uses it (the same routes the notebooks, the
// Postman collection and the checkout page use). Nothing here talks to Stripe.
//
// Every URL is relative to the shop's own address: the shop is at <base>/shop/, so the API is
// at <base>/api/..., where <base> is "" on the lab and /user/<name>/proxy/<port> behind
// JupyterHub's proxy. The server never needs to know which.

export interface ShopConfig {
  mode: "offline" | "test";
  publishable_key: string; // pk_test_...: safe in a browser; a secret key never comes here
  stripe_js_url: string; // offline: the mock Stripe.js on this server; test: js.stripe.com
}

export interface Product {
  id: string;
  name: string;
  description: string;
  unit_amount: number; // integer, in the currency's smallest unit
  currency: string;
}

export interface Order {
  id: string;
  amount: number; // what the server priced, in minor units
  amount_paid: number;
  currency: string;
  status: "created" | "attempted" | "paid" | "canceled";
  attempts: number;
  product: string;
  quantity: number;
  subtotal: number;
  discount: number;
  customer: string;
  payment_intent: string | null;
  pay_with?: PayWith;
  checkout_session?: string | null;
  last_payment_error: {code?: string; message?: string} | null;
}

// How the order is paid: on the shop's own card form (a PaymentIntent the server creates), or
// on Stripe's hosted Checkout page (a Checkout Session; offline, the lab plays that page).
export type PayWith = "payment_intent" | "checkout_session";

// Where to send the customer to pay on Stripe's page (only to the order's creator).
export interface CheckoutSessionLink {
  id: string;
  url: string; // Stripe's page; offline a path on this server (the lab's stand-in for it)
  status: "open" | "complete" | "expired";
  expires_at: number;
}

// What the server answers about a PaymentIntent after the offline confirm or a sync.
export interface IntentSummary {
  id: string;
  status: string;
  client_secret?: string;
  last_payment_error: {code?: string | null; message?: string | null} | null;
}

// The server's error shape, Stripe's: {"error": {"type", "message", "param"}}.
export class ServerError extends Error {
  constructor(readonly status: number, message: string, readonly param?: string,
              readonly code?: string) {
    super(message);
  }
}

const BASE = new URL("../", document.baseURI);

export function apiUrl(path: string): string {
  return new URL(path, BASE).href;
}

async function call<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(apiUrl(path), {
    cache: "no-store",
    ...init,
    headers: {Accept: "application/json", ...init.headers},
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = body?.error ?? {};
    throw new ServerError(response.status,
                          error.message ?? `The server answered HTTP ${response.status}.`,
                          error.param ?? undefined, error.code ?? undefined);
  }
  return body as T;
}

// State changes are JSON only (the server refuses anything else from a browser).
function postJson<T>(path: string, body: unknown, headers: Record<string, string> = {}) {
  return call<T>(path, {method: "POST", body: JSON.stringify(body),
                        headers: {"Content-Type": "application/json", ...headers}});
}

export const getConfig = () => call<ShopConfig>("api/config");

export const getProducts = () =>
  call<{data: Product[]}>("api/products").then((answer) => answer.data);

// Step 1 (and step 4's answer): the client says WHAT it wants; the server says what it costs
// and hands back the PaymentIntent's client secret. The Idempotency-Key makes a repeated
// request (a double click, a retry after a lost answer) return the same order.
// payWith "checkout_session": no client secret; the answer's checkout_session says where
// Stripe's page is.
export const createOrder = (productId: string, quantity: number, customer: string,
                            idempotencyKey: string, payWith: PayWith = "payment_intent") =>
  postJson<{order: Order; client_secret: string | null; access?: string;
            checkout_session?: CheckoutSessionLink | null}>(
    "api/orders", {productId, quantity, customer,
                   ...(payWith === "payment_intent" ? {} : {payWith})},
    {"Idempotency-Key": idempotencyKey})
    .then((answer) => {
      if (answer.access) accessCodes.set(answer.order.id, answer.access);
      return answer;
    });

// On a class server (learners.py) an order is changed only by its owner: the shop that made
// it proves that with the order's access code, which the server answered to it alone. On a
// laptop there is none, and no header is sent.
const accessCodes = new Map<string, string>();

function ownerHeaders(orderId: string): Record<string, string> {
  const access = accessCodes.get(orderId);
  return access ? {"X-Order-Access": access} : {};
}

export const getOrder = (orderId: string) =>
  call<{order: Order}>(`api/orders/${encodeURIComponent(orderId)}`).then((a) => a.order);

// Ask the server to re-read the order's PaymentIntent from Stripe and settle the order.
export const syncOrder = (orderId: string) =>
  postJson<{order: Order; payment_intent: IntentSummary | null}>(
    `api/orders/${encodeURIComponent(orderId)}/sync`, {}, ownerHeaders(orderId));

// The offline route's server half (checkout.py's offline blueprint): pay with a card token.
export const confirmWithToken = (orderId: string, token: string) =>
  postJson<{order: Order; payment_intent: IntentSummary}>(
    `checkout/${encodeURIComponent(orderId)}/confirm`, {token}, ownerHeaders(orderId));

// A fresh key per attempt. crypto.getRandomValues, not crypto.randomUUID: the latter exists
// only on secure origins, and a class server (http://teacher:4242) is not one.
export function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "shop-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Step 6, the client's half: ask the SERVER until it says the order is paid. The server says
// so only after Stripe's signed webhook arrived and the amount matched; whatever Stripe.js
// told this page, the order is not paid until then.
export async function waitUntilPaid(orderId: string, onCheck: (order: Order | null,
                                                                checks: number) => void,
                                    seconds = 30): Promise<Order | null> {
  const until = Date.now() + seconds * 1000;
  for (let checks = 1; ; checks++) {
    let order: Order | null = null;
    try {
      order = await getOrder(orderId);
    } catch {
      // The server may be restarting: keep asking until the time is up.
    }
    onCheck(order, checks);
    if (order && (order.status === "paid" || order.status === "canceled")) return order;
    if (Date.now() >= until) return order;
    await sleep(500);
  }
}
