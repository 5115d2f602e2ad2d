"""GET /api/orders/<order_id>/trace: an order's messages and its sequence diagram.

    {"object": "list", "order": ..., "data": [messages...], "mermaid": "sequenceDiagram ...",
     "condensed": "sequenceDiagram ..." (one arrow per step, with counts)}
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from ..db import get_db
from ..orders_api import order_or_404
from .diagram import condensed, mermaid
from .writer import read_trace

bp = Blueprint("trace", __name__)


@bp.get("/api/orders/<order_id>/trace")
def order_trace(order_id: str):
    db = get_db()
    order_or_404(db, order_id)
    current_app.extensions["trace_writer"].flush()  # what earlier requests handed over
    messages = read_trace(db, order_id)
    return jsonify({"object": "list", "order": order_id, "data": messages,
                    "mermaid": mermaid(messages), "condensed": condensed(messages)})
