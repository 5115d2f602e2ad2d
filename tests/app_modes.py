"""The lab's app (the merchant server and the lab's routes) in this process, offline or in test
mode, talking to no Stripe at all: for what a route answers before any Stripe call (the
offline-only routes, the React shop's files). The offline one points at port 9, where nothing
listens."""
from __future__ import annotations

from tutorial_server.config import load_settings
from tutorial_server.lab.app import create_lab_app


def app_in(mode: str, tmp_path):
    env = {"TUTORIAL_DB": str(tmp_path / f"{mode}.sqlite3")}
    if mode == "test":
        env |= {"STRIPE_SECRET_KEY": "sk_test_" + "x" * 24,
                "STRIPE_PUBLISHABLE_KEY": "pk_test_" + "x" * 24,
                "STRIPE_WEBHOOK_SECRET": "whsec_" + "x" * 32}
    settings = load_settings(env)
    assert settings.mode == mode
    return create_lab_app(settings, backend_url="http://127.0.0.1:9" if mode == "offline"
                          else None)
