"""What both kinds of test lab offer behind the HTTP API: placing an order, signed webhook posts
and direct reads of the lab's database (tests/running_lab.py's RunningLab, a lab process;
tests/fast/conftest.py's InProcessLab, the app in the test's process). A class needs `get`,
`post`, `db_path` and `webhook_secret`."""
from __future__ import annotations

import json
import sqlite3

from . import signing


class LabDatabaseView:
    def order(self, product: str = "prod_drip_bags", quantity: int = 1,
              customer: str | None = None, **kw) -> dict:
        """Step 1 through the lab's HTTP API (the subclass's `post`): the 201 answer's JSON."""
        body = {"productId": product, "quantity": quantity}
        if customer:
            body["customer"] = customer
        r = self.post("/api/orders", json=body, **kw)
        assert r.status_code == 201, r.text
        return r.json()

    def order_status(self, order_id: str) -> dict:
        return self.get(f"/api/orders/{order_id}").json()["order"]

    def post_event(self, event: dict, secret: str | None = None, timestamp: int | None = None,
                   header: str | None = None):
        payload = json.dumps(event).encode()
        if header is None:
            header = signing.sign(payload, secret or self.webhook_secret, timestamp)
        return self.post("/webhook", data=payload,
                         headers={"Stripe-Signature": header, "Content-Type": "application/json"})

    def query(self, sql: str, *params) -> list[sqlite3.Row]:
        """Read the lab's database directly (the tests' view behind the API)."""
        db = sqlite3.connect(self.db_path)
        db.row_factory = sqlite3.Row
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def snapshot(self) -> dict:
        """Every row of every table: compare before and after to prove nothing changed.
        Not the orders' traces (trace_messages): a log of every message, refused ones too."""
        db = sqlite3.connect(self.db_path)
        try:
            tables = [r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name != 'trace_messages' ORDER BY name")]
            return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in tables}
        finally:
            db.close()
