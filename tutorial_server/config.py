"""Settings from the environment: which Stripe backend to use, and the keys for it.

Three modes, one switch (`STRIPE_SECRET_KEY`):
- offline (default): no secret key set; the lab starts the offline Stripe stand-in.
- test: `STRIPE_SECRET_KEY=sk_test_...`; real Stripe in test mode.
- live: refused. A teaching lab never touches real money.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Each learner's lab lives in their own home, never inside the installation: on a JupyterHub
# every learner runs the same installed package, and one database there would be one lab for
# the whole class (everyone's orders on every dashboard, each start cancelling the others').
LAB_FOLDER_NAME = ".stripe-lab"


def default_db_path(environ: dict | None = None) -> Path:
    """~/.stripe-lab/tutorial.sqlite3 for whoever runs the lab ($HOME decides whose)."""
    home = (environ if environ is not None else os.environ).get("HOME")
    return (Path(home) if home else Path.home()) / LAB_FOLDER_NAME / "tutorial.sqlite3"


DEFAULT_DB = default_db_path()  # as seen by this process; load_settings() asks again each time
DEFAULT_PORT = 4242

# Placeholders for offline mode, not secrets. A lab gives its server its stand-in's own random
# key instead (lab/offline_stripe.py): the stand-in refuses this one; a plain localstripe
# accepts any sk_ key.
OFFLINE_SECRET_KEY = "sk_test_offline_lab"
OFFLINE_PUBLISHABLE_KEY = "pk_test_offline_lab"

_LIVE_KEY = re.compile(r"^(sk|rk|pk)_live_")


class ConfigError(Exception):
    """The environment asks for something the lab refuses to do; the message says what to fix."""


@dataclass(frozen=True)
class Settings:
    mode: Literal["offline", "test"]
    secret_key: str = field(repr=False)
    publishable_key: str
    webhook_secret: str | None = field(repr=False, default=None)
    db_path: Path = DEFAULT_DB
    port: int = DEFAULT_PORT

    @property
    def offline(self) -> bool:
        return self.mode == "offline"


def _refuse_live_keys(environ: dict) -> None:
    for name in ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET"):
        value = (environ.get(name) or "").strip()
        if _LIVE_KEY.match(value):
            raise ConfigError(
                f"{name} holds a live-mode key. This lab only runs in test mode or offline: "
                f"use a test key (sk_test_/pk_test_) from the Stripe Dashboard's test mode, "
                f"or unset {name} to run offline."
            )


def offline_settings(**changes) -> Settings:
    """Settings for the offline stand-in whatever the environment says (for a client of a
    running offline lab: the CLI, the notebooks, the tests); `changes` replace fields."""
    return replace(load_settings({}), **changes)


def load_settings(environ: dict | None = None) -> Settings:
    """Read the settings from `environ` (default: the process environment).

    Raises ConfigError with a message naming the variable to fix.
    """
    env = dict(os.environ if environ is None else environ)
    _refuse_live_keys(env)
    secret_key = (env.get("STRIPE_SECRET_KEY") or "").strip()
    publishable_key = (env.get("STRIPE_PUBLISHABLE_KEY") or "").strip()
    webhook_secret = (env.get("STRIPE_WEBHOOK_SECRET") or "").strip() or None
    db_path = Path(env.get("TUTORIAL_DB") or default_db_path(env)).expanduser()
    try:
        port = int(env.get("PORT") or DEFAULT_PORT)
    except ValueError:
        raise ConfigError(f"PORT must be a number, got {env.get('PORT')!r}.") from None

    if webhook_secret is not None and not webhook_secret.startswith("whsec_"):
        raise ConfigError("STRIPE_WEBHOOK_SECRET must start with whsec_ (it is the signing "
                          "secret of a webhook endpoint, or the one `stripe listen` prints).")

    if not secret_key:
        return Settings(mode="offline", secret_key=OFFLINE_SECRET_KEY,
                        publishable_key=OFFLINE_PUBLISHABLE_KEY,
                        webhook_secret=webhook_secret, db_path=db_path, port=port)

    if not secret_key.startswith(("sk_test_", "rk_test_")):
        raise ConfigError("STRIPE_SECRET_KEY must be a test-mode secret key (sk_test_... or "
                          "rk_test_...). Publishable keys (pk_) belong in STRIPE_PUBLISHABLE_KEY.")
    if not publishable_key.startswith("pk_test_"):
        raise ConfigError("STRIPE_PUBLISHABLE_KEY must be set to your test publishable key "
                          "(pk_test_...) when STRIPE_SECRET_KEY is set: the checkout page needs it.")
    if webhook_secret is None:
        raise ConfigError(
            "STRIPE_WEBHOOK_SECRET is not set. In test mode the server verifies every webhook "
            "and refuses to run without the secret. Run "
            "`stripe listen --forward-to localhost:4242/webhook` and copy the whsec_... it prints."
        )
    return Settings(mode="test", secret_key=secret_key, publishable_key=publishable_key,
                    webhook_secret=webhook_secret, db_path=db_path, port=port)
