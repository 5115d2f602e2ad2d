-- The lab's database: every table, in one file. Parents before children: the reset
-- (db.clear_all) deletes in the reverse of this order.
-- Amounts are integers in the currency's minor unit (paise, cents; yen have none).

CREATE TABLE IF NOT EXISTS orders (
    id                  TEXT PRIMARY KEY,
    product_id          TEXT NOT NULL,
    quantity            INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    customer            TEXT NOT NULL,
    subtotal            INTEGER NOT NULL,
    discount            INTEGER NOT NULL,
    amount              INTEGER NOT NULL CHECK (amount > 0),
    amount_paid         INTEGER NOT NULL DEFAULT 0,
    amount_refunded     INTEGER NOT NULL DEFAULT 0,
    currency            TEXT NOT NULL,
    receipt             TEXT NOT NULL,
    status              TEXT NOT NULL
                        CHECK (status IN ('created', 'attempted', 'paid', 'canceled',
                                          'partially_refunded', 'refunded', 'disputed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    payment_intent      TEXT UNIQUE,
    -- How the customer pays: the lab's own checkout page with a PaymentIntent the server
    -- creates (steps 3-5), or Stripe's hosted Checkout page (checkout_sessions.py).
    pay_with            TEXT NOT NULL DEFAULT 'payment_intent'
                        CHECK (pay_with IN ('payment_intent', 'checkout_session')),
    checkout_session    TEXT,
    last_payment_error  TEXT,
    cancellation_reason TEXT,
    created_at          INTEGER NOT NULL,
    paid_at             INTEGER
);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status);
CREATE UNIQUE INDEX IF NOT EXISTS orders_by_checkout_session ON orders (checkout_session);

-- Class mode (learners.py): each learner who joined, by the SHA-256 of their key, and who
-- owns each order made in class mode (its learner, if any, and the SHA-256 of its access code).
CREATE TABLE IF NOT EXISTS learners (
    customer  TEXT PRIMARY KEY,
    key_hash  TEXT NOT NULL UNIQUE,
    joined_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS order_owners (
    order_id    TEXT PRIMARY KEY REFERENCES orders (id),
    learner     TEXT,
    access_hash TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    order_id    TEXT NOT NULL REFERENCES orders (id),
    created_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_events (
    id             TEXT PRIMARY KEY,
    type           TEXT NOT NULL,
    payment_intent TEXT,
    order_id       TEXT,
    outcome        TEXT NOT NULL,
    received_at    INTEGER NOT NULL
);

-- Each failed payment the order has counted, so that the webhook and a sync (or reconcile)
-- reporting the same failure count it once, whichever comes first (see fulfilment).
CREATE TABLE IF NOT EXISTS counted_failures (
    order_id TEXT NOT NULL REFERENCES orders (id),
    failure  TEXT NOT NULL,
    PRIMARY KEY (order_id, failure)
);

CREATE TABLE IF NOT EXISTS inventory (
    order_id    TEXT PRIMARY KEY REFERENCES orders (id),
    customer    TEXT NOT NULL,
    product_id  TEXT NOT NULL,
    quantity    INTEGER NOT NULL,
    acquired_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS inventory_by_customer ON inventory (customer);

-- Each Refund Stripe made for an order (re_...), as Stripe last described it.
CREATE TABLE IF NOT EXISTS refunds (
    id         TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL REFERENCES orders (id),
    amount     INTEGER NOT NULL CHECK (amount > 0),
    currency   TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS refunds_by_order ON refunds (order_id);

-- Each refund request a client made (its Idempotency-Key): a retry gets the first answer.
-- Inserted before Stripe is called (the key's claim, refunds.py): refund_id stays NULL while the
-- request is at Stripe, and created_at is when it was claimed (a stale claim is taken over).
CREATE TABLE IF NOT EXISTS refund_requests (
    key         TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders (id),
    fingerprint TEXT NOT NULL,
    amount      INTEGER NOT NULL,
    refund_id   TEXT,
    created_at  INTEGER NOT NULL
);

-- A thing one request at a time may do at Stripe (claims.py): e.g. ('payment_intent', order id)
-- while that order's PaymentIntent is being created. Released when done or failed.
CREATE TABLE IF NOT EXISTS claims (
    what       TEXT NOT NULL,
    key        TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    holder     INTEGER NOT NULL,  -- the process id of the server that claimed it
    PRIMARY KEY (what, key)
);

-- Each dispute Stripe reported (dp_...): which order, how much, why, and its state then.
CREATE TABLE IF NOT EXISTS disputes (
    id         TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL REFERENCES orders (id),
    amount     INTEGER NOT NULL,
    currency   TEXT NOT NULL,
    reason     TEXT,
    status     TEXT,
    created_at INTEGER NOT NULL
);

-- What a person should look at about an order (alerts.py), once per order and kind: a payment
-- that does not match its order, a refund that failed, a dispute that was lost.
CREATE TABLE IF NOT EXISTS order_alerts (
    order_id   TEXT NOT NULL REFERENCES orders (id),
    kind       TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (order_id, kind)
);

-- Each order's messages (the lab's trace, tutorial_server/trace/): steps 1-6 as a sequence diagram.
CREATE TABLE IF NOT EXISTS trace_messages (
    id          INTEGER PRIMARY KEY,          -- the order messages were recorded in
    order_id    TEXT NOT NULL,
    at          REAL NOT NULL,                -- unix time, seconds
    step        INTEGER NOT NULL CHECK (step BETWEEN 1 AND 6),
    sender      TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT,
    failed      INTEGER NOT NULL DEFAULT 0,
    duration_ms REAL,
    count       INTEGER NOT NULL DEFAULT 1,   -- folded polls
    detail      TEXT NOT NULL                 -- JSON: method, path, event, outcome, ...
);
CREATE INDEX IF NOT EXISTS trace_messages_by_order ON trace_messages (order_id, id);
