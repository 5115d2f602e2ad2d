"""The fourth way to run the notebooks: Stripe test mode (STRIPE_SECRET_KEY=sk_test_...).

api.stripe.com cannot be reached from here, so the lab and the kernels talk to a MOCK of it
(tests/stripe_api_mock.py: real Stripe's object shapes, the statuses each test card gives, and
webhooks forwarded the way `stripe listen` forwards them). The lab is a real `serve` process in
test mode; the mock's address reaches it and the kernels through TUTORIAL_STRIPE_API_BASE, which
the gateway honours only with a test-mode key and a loopback address (for these tests only).

Every notebook must reach its last cell without an error output, and no offline-only call (the
stand-in's /_config routes, its 3-D Secure `_authenticate` route) may reach "Stripe".
"""
from __future__ import annotations

import json
import time

import pytest

from tutorial_server.config import load_settings
from tutorial_server.lab.process import gateway_for
from tutorial_server.lab.stripe_http import TEST_API_BASE_VARIABLE
from tutorial_server.notebook.customer import complete_3ds, pay_with_test_card

from .notebook_runs import NOTEBOOKS, kernel_env, printed, problems, run_notebooks
from .running_lab import RunningLab, new_webhook_secret
from .stripe_api_mock import StripeApiMock
from .stripe_reference import FIXTURES_NAME, find_reference_dir

# Made-up test-mode keys, assembled so no key-shaped text sits in the source. The mock accepts any.
SECRET_KEY = "sk_" + "test_" + "mock0000000000000000000000"
PUBLISHABLE_KEY = "pk_" + "test_" + "mock0000000000000000000000"


@pytest.fixture(scope="module")
def test_mode(tmp_path_factory):
    folder = find_reference_dir()
    if folder is None:
        pytest.skip(f"{FIXTURES_NAME} (real Stripe's examples, for the mock's answers) not found "
                    "in a shared/reference/ folder beside the clone")
    examples = json.loads((folder / FIXTURES_NAME).read_text())["resources"]
    secret = new_webhook_secret()
    # Nobody completes a 3-D Secure challenge here (a learner doing Run All often does not
    # either): the notebooks must move on after a short wait.
    stripe = StripeApiMock(examples, secret, three_ds_delay=None).start()
    tmp = tmp_path_factory.mktemp("test-mode")
    keys = {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": secret, TEST_API_BASE_VARIABLE: stripe.url}
    lab = RunningLab(tmp / "lab.sqlite3", secret, tmp / "lab.log", env=keys)
    try:
        lab.start()
        assert lab.state["mode"] == "test" and lab.state["backend_url"] is None
        stripe.forward_to = lab.url + "/webhook"  # `stripe listen --forward-to`
        # The kernels find the lab as under `make lab` (its database), with the keys set.
        yield stripe, kernel_env(TUTORIAL_DB=str(lab.db_path), TUTORIAL_3DS_WAIT="0.5", **keys)
    finally:
        lab.stop()
        stripe.stop()


@pytest.fixture(scope="module")
def test_mode_runs(test_mode):
    stripe, env = test_mode
    started = time.monotonic()
    # 05 waits longest (for webhooks that a 3-D Secure nobody completes never sends): first.
    runs = run_notebooks(sorted(NOTEBOOKS, key=lambda p: not p.name.startswith("05")), env)
    print(f"\ntest mode, all {len(NOTEBOOKS)} notebooks: {time.monotonic() - started:.1f} s, "
          f"{len(stripe.requests)} Stripe requests")
    return runs


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_notebook_reaches_its_end_in_test_mode(path, test_mode, test_mode_runs):
    stripe, env = test_mode
    nb, seconds = test_mode_runs[path.name]
    assert problems(nb) == [], "\n".join(problems(nb))
    text = printed(nb)
    assert "mode: test" in text or "(test)" in text, "the notebook ran in test mode"
    assert SECRET_KEY not in text and env["STRIPE_WEBHOOK_SECRET"] not in text
    print(f"test mode, {path.name}: {seconds:.1f} s")


def test_no_offline_only_call_reached_stripe_in_test_mode(test_mode, test_mode_runs):
    stripe, _ = test_mode
    assert len(stripe.requests) > 50, "the notebooks did talk to (the mock of) Stripe"
    offline_only = [r for r in stripe.requests if "/_config" in r[1] or r[1].endswith("/_authenticate")]
    assert offline_only == [], "offline-only calls reached Stripe"
    assert stripe.unknown == [], "calls real Stripe does not know (or the mock lacks)"


@pytest.fixture
def examples():
    folder = find_reference_dir()
    if folder is None:
        pytest.skip(f"{FIXTURES_NAME} not found in a shared/reference/ folder beside the clone")
    return json.loads((folder / FIXTURES_NAME).read_text())["resources"]


@pytest.mark.parametrize("completed", [True, False], ids=["completed", "not-completed"])
def test_3ds_in_test_mode_says_where_to_complete_it_and_waits(examples, completed, capsys,
                                                              monkeypatch):
    """complete_3ds in test mode: no offline-only call; it prints Stripe's challenge
    page (next_action.redirect_to_url) and waits, then returns what Stripe then says."""
    stripe = StripeApiMock(examples, new_webhook_secret(),
                           three_ds_delay=0.3 if completed else None).start()
    try:
        monkeypatch.setenv(TEST_API_BASE_VARIABLE, stripe.url)
        gateway = gateway_for({"mode": "test"}, load_settings({
            "STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": new_webhook_secret()}))
        order = {"id": "order_3ds", "amount": 1340, "currency": "usd",
                 "product_id": "prod_pour_over_kit", "quantity": 1, "customer": "guest"}
        intent = pay_with_test_card(gateway, gateway.create_payment_intent(order)["id"], "3ds")
        assert intent["status"] == "requires_action"
        intent = complete_3ds(gateway, intent["id"], approve=True, wait=5 if completed else 1)
        said = capsys.readouterr().out
        assert f"{stripe.url}/3ds/{intent['id']}" in said and "click Complete" in said
        assert intent["status"] == ("succeeded" if completed else "requires_action")
        assert ("Not completed yet" in said) is not completed
        assert not [r for r in stripe.requests if "_authenticate" in r[1] or "/_config" in r[1]]
    finally:
        stripe.stop()


def test_the_test_api_base_is_refused_unless_it_is_this_machine(monkeypatch):
    settings = load_settings({"STRIPE_SECRET_KEY": SECRET_KEY,
                              "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
                              "STRIPE_WEBHOOK_SECRET": new_webhook_secret()})
    monkeypatch.setenv(TEST_API_BASE_VARIABLE, "http://example.com:8080")
    with pytest.raises(ValueError, match="127.0.0.1"):
        gateway_for({"mode": "test"}, settings)
