"""Fidelity to real Stripe: nothing the lab teaches offline may be something real Stripe (the
API version stripe-python 16.1.0 pins) would refuse or answer differently.

1. Static: mypy checks every Stripe call in the package and in the notebooks' code cells
   against stripe-python's own type hints (its typed request params).
2. Runtime: every request the package sends during the test suite is recorded
   (tutorial_server/lab/stripe_http.py, switched on by tests/conftest.py) and each parameter is
   checked against the SDK's typed params for its endpoint. Parameters the gateway adds on
   purpose for the offline stand-in are listed in ONE place: gateway.OFFLINE_ONLY_PARAMS.
3. Response shapes: the PaymentIntent and Event fields the package reads exist in real Stripe's
   resource examples (../shared/reference/stripe-openapi-fixtures3.json) with the same JSON types.
4. One source of truth: every difference the gateway absorbs is a row of OFFLINE_DIFFERENCES.
5. The API version is pinned to the SDK's own and sent with every request.
"""
from __future__ import annotations

import http.server
import inspect
import json
import re
import subprocess
import sys
import threading
import time
import types
import typing
from collections import Counter
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (tomli, a test extra)
    import tomli as tomllib

import pytest
import requests
import stripe
import stripe.params
import typing_extensions
from stripe._request_options import RequestOptions

from tutorial_server import gateway as gateway_module
from tutorial_server.config import Settings
from tutorial_server.course.differences import (OFFLINE_DIFFERENCES, OFFLINE_ONLY_PARAMS,
                                                differences_markdown)
from tutorial_server.gateway import API_VERSION, OfflineGateway, StripeGateway
from tutorial_server.lab import stripe_http as stripe_recorder
from tutorial_server.notebook import customer as customer_module
from tutorial_server.notebook.customer import complete_3ds, pay_with_test_card
from tutorial_server.webhooks import verify_event

from .running_lab import ROOT, RunningLab, new_webhook_secret, wait_for
from .stripe_reference import FIXTURES_NAME, find_reference_dir

PACKAGE = ROOT / "tutorial_server"
NOTEBOOKS = ROOT / "notebooks"
# Extracted notebook code and the deliberately wrong calls go to a fixed, git-ignored folder:
# mypy caches a module's messages together with its file's path, so a path that changed from
# run to run would make a rerun report messages under the previous run's path.
MYPY_WORK = ROOT / "test-artifacts" / "mypy"


# === 1. Static check: mypy against stripe-python's type hints ===============================

_MAGIC = re.compile(r"^\s*(?:[%!]|[\w.]+\s*=\s*[%!]|[\w.]+\?{1,2}\s*$)")


def notebook_to_python(notebook: Path) -> tuple[str, dict[int, tuple[int, int]]]:
    """The code cells of a notebook as one Python module, for mypy.

    IPython-only lines (`%magic`, `!shell`, `x = !cmd`, `obj?`) become `pass`; cells that start
    with a cell magic (`%%bash`, ...) are left out. Returns the source and a map from each of its
    line numbers to (cell number, line in cell), both counted from 1 as Jupyter shows them.
    """
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    lines = [
        f"# Code cells of {notebook.name}, extracted for mypy by tests/test_stripe_fidelity.py",
        "# mypy: allow-redefinition",  # cells often re-use a name for another type
        "# mypy: no-strict-optional",  # as for the package outside gateway.py (pyproject.toml)
        '# mypy: disable-error-code="top-level-await"',  # IPython runs top-level await
    ]
    code = ["".join(c.get("source", "")) if isinstance(c.get("source"), list)
            else c.get("source", "") for c in cells]
    joined = "\n".join(code)
    if re.search(r"\bdisplay\(", joined) and not re.search(r"import[^\n]*\bdisplay\b", joined):
        lines.append("from IPython.display import display")  # a builtin inside IPython
    line_map: dict[int, tuple[int, int]] = {}
    for number, (cell, source) in enumerate(zip(cells, code), start=1):
        if cell.get("cell_type") != "code":
            continue
        cell_lines = source.splitlines()
        if cell_lines and cell_lines[0].lstrip().startswith("%%"):
            lines.append(f"# cell {number}: starts with a cell magic; not Python, left out")
            continue
        lines.append(f"# --- cell {number} ---")
        for index, line in enumerate(cell_lines, start=1):
            if _MAGIC.match(line):
                indent = line[: len(line) - len(line.lstrip())]
                line = f"{indent}pass  # IPython: {line.strip()}"
            lines.append(line)
            line_map[len(lines)] = (number, index)
    return "\n".join(lines) + "\n", line_map


def extract_notebooks(notebooks: list[Path], folder: Path) -> dict[Path, tuple[Path, dict]]:
    """Write each notebook's code cells to folder/nb_<name>.py; returns {py file: (notebook, map)}."""
    folder.mkdir(parents=True, exist_ok=True)
    extracted = {}
    for notebook in notebooks:
        source, line_map = notebook_to_python(notebook)
        module = "nb_" + re.sub(r"\W", "_", notebook.stem)
        path = folder / f"{module}.py"
        n = 1
        while path in extracted:
            n += 1
            path = folder / f"{module}_{n}.py"
        path.write_text(source, encoding="utf-8")
        extracted[path] = (notebook, line_map)
    return extracted


def run_mypy(*paths: Path | str) -> tuple[int, str, float]:
    """mypy with the project's configuration ([tool.mypy] in pyproject.toml, cache in the
    git-ignored .mypy_cache/), as a subprocess. Returns (exit status, output, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--no-color-output", "--show-error-codes", *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def _readable(output: str, extracted: dict[Path, tuple[Path, dict]]) -> str:
    """mypy's messages, with extracted notebook lines named by notebook and cell."""
    for py_file, (notebook, line_map) in extracted.items():
        def cell_of(match: re.Match, notebook=notebook, line_map=line_map) -> str:
            where = line_map.get(int(match.group(1)))
            cell = f"cell {where[0]}, line {where[1]}" if where else f"line {match.group(1)}"
            name = notebook.relative_to(ROOT) if notebook.is_relative_to(ROOT) else notebook
            return f"{name}, {cell}:"
        # By file name: mypy may repeat a cached message under the path it had then.
        output = re.sub(r"(?m)^\S*?" + re.escape(py_file.name) + r":(\d+):", cell_of, output)
    return output


def test_mypy_is_configured_for_the_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["files"] == ["tutorial_server"]
    assert config["check_untyped_defs"] is True  # Flask views have no annotations
    assert config["cache_dir"] == ".mypy_cache"
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".mypy_cache/" in ignored or ".mypy_cache" in ignored


def test_package_and_notebooks_type_check_against_stripe_hints():
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    extracted = extract_notebooks(notebooks, MYPY_WORK / "notebook_cells")
    modules = sorted(PACKAGE.rglob("*.py"))  # the server and its wings
    assert len(modules) >= 10 and PACKAGE / "gateway.py" in modules  # never vacuous
    status, output, seconds = run_mypy(PACKAGE, *extracted)
    print(f"mypy over {len(modules)} package modules and {len(extracted)} notebooks: "
          f"{seconds:.1f}s")
    assert status == 0, (
        "mypy finds calls that do not match stripe-python's type hints (or other type "
        "errors):\n" + _readable(output, extracted))
    checked = re.search(r"Success: no issues found in (\d+) source files", output)
    assert checked and int(checked.group(1)) == len(modules) + len(extracted), output


WRONG_CALLS = '''\
import stripe

client = stripe.StripeClient("sk_test_not_a_key")
client.v1.payment_intents.create(
    params={"amount": 100, "currency": "usd", "payment_method_types": ["card"]})
client.v1.payment_intents.create(params={"amount": "100", "currency": "usd"})
stripe.PaymentIntent.create(amount=100, currency="usd", payment_method_types=["card"])


def confirm_on_the_server(intent_id):  # no annotations: checked all the same
    client.v1.payment_intents.confirm(intent_id, params={"payment_method": "pm_card_visa",
                                                         "retrun_url": "https://example.com"})
'''

WRONG_NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# A lesson"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["%matplotlib inline\n", "!pip list\n", "import stripe\n",
                    "client = stripe.StripeClient('sk_test_not_a_key')\n",
                    "answer = await client.v1.payment_intents.retrieve_async('pi_1')\n",
                    "answer = 'redefined as another type'"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["%%bash\n", "echo not python\n"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": ["if True:\n", "    %time x = 1\n",
                    "client.v1.payment_intents.create(params={'amount': 100, 'currency': 'usd',\n",
                    "                                         'payment_method_types': ['card']})"]},
    ],
    "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
}


def test_mypy_catches_wrong_stripe_parameters():
    """The check is not vacuous: the same mypy configuration reports a parameter real Stripe's
    current API version does not take, in a module and in a notebook cell."""
    folder = MYPY_WORK / "deliberately_wrong"
    folder.mkdir(parents=True, exist_ok=True)
    wrong = folder / "wrong_stripe_calls.py"
    wrong.write_text(WRONG_CALLS)
    notebook = folder / "99_wrong.ipynb"
    notebook.write_text(json.dumps(WRONG_NOTEBOOK))
    extracted = extract_notebooks([notebook], folder / "notebook_cells")
    status, output, seconds = run_mypy(wrong, *extracted)
    output = _readable(output, extracted)
    print(f"mypy over the deliberately wrong calls: {seconds:.1f}s\n{output}")
    assert status == 1
    expected = [
        f'{wrong.name}:5: error: Extra key "payment_method_types" for TypedDict '
        '"PaymentIntentCreateParams"  [typeddict-unknown-key]',
        f'{wrong.name}:6: error: Incompatible types (expression has type "str", TypedDict item '
        '"amount" has type "int")  [typeddict-item]',
        f'{wrong.name}:7: error: Unexpected keyword argument "payment_method_types" for "create" of '
        '"PaymentIntent"; did you mean "allowed_payment_method_types" or '
        '"excluded_payment_method_types"?  [call-arg]',
        f'{wrong.name}:11: error: Argument "params" to "confirm" of "PaymentIntentService" has '
        'incompatible type "dict[str, str]"; expected "PaymentIntentConfirmParams | None"  '
        '[arg-type]',
        f'{notebook.relative_to(ROOT)}, cell 4, line 3: error: Extra key "payment_method_types" for TypedDict '
        '"PaymentIntentCreateParams"  [typeddict-unknown-key]',
    ]
    for message in expected:
        assert message in output
    # Magics, the cell magic, top-level await and redefinition are not errors.
    assert output.count(": error:") == len(expected), output


def test_notebook_extraction_keeps_python_and_drops_ipython(tmp_path):
    notebook = tmp_path / "00 an overview.ipynb"
    notebook.write_text(json.dumps(WRONG_NOTEBOOK))
    source, line_map = notebook_to_python(notebook)
    compile(source, "extracted", "exec", flags=0x2000)  # PyCF_ALLOW_TOP_LEVEL_AWAIT
    assert "pass  # IPython: %matplotlib inline" in source
    assert "pass  # IPython: !pip list" in source
    assert "    pass  # IPython: %time x = 1" in source
    assert "echo not python" not in source and "cell 3: starts with a cell magic" in source
    assert source.splitlines()[max(line_map) - 1].strip() == "'payment_method_types': ['card']})"
    assert line_map[max(line_map)] == (4, 4)
    [py_file] = extract_notebooks([notebook], tmp_path / "out")
    assert py_file.name == "nb_00_an_overview.py"


# === 2. Runtime check: every recorded request against the SDK's typed params ================

# The check itself (SDK_CALLS, request_problems, unaccepted_requests) lives in
# tests/stripe_params.py: conftest.py runs it over the whole session's requests too.
from .stripe_params import (KNOWN_ENDPOINTS, REQUEST_OPTION_KEYS, SDK_CALLS,  # noqa: E402,F401
                            endpoint_of, params_typeddict, request_problems, sdk_endpoint,
                            unaccepted_requests)


def test_sdk_calls_map_names_the_sdks_own_endpoints_and_params():
    for endpoint, (service, method) in SDK_CALLS.items():
        assert sdk_endpoint(service, method) == endpoint, (service, method)
        typeddict = params_typeddict(service, method)
        assert typing_extensions.is_typeddict(typeddict) and typeddict.__module__.startswith(
            "stripe.params.")
    # Offline-only endpoints are not real ones; offline-only params of real endpoints are not
    # parameters real Stripe knows (else they would not need listing).
    for endpoint, names in OFFLINE_ONLY_PARAMS.items():
        if endpoint in SDK_CALLS:
            declared = params_typeddict(*SDK_CALLS[endpoint]).__optional_keys__
            assert not names & declared, f"{endpoint}: {names & declared} are real parameters"


def _record(method: str, path: str, params: dict) -> dict:
    from urllib.parse import urlencode
    from stripe._encode import _api_encode
    body = urlencode(list(_api_encode(params)))
    return stripe_recorder.describe_request(method, f"http://127.0.0.1:1{path}",
                                            {"Stripe-Version": API_VERSION}, body)


def test_runtime_check_accepts_the_portable_subset_and_rejects_the_rest():
    """The checker itself, on requests encoded exactly as stripe-python encodes them."""
    good = [
        _record("POST", "/v1/payment_intents", {"amount": 1340, "currency": "usd",
                                                "metadata": {"order_id": "order_1"}}),
        _record("POST", "/v1/payment_methods", {"type": "card", "card": {
            "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}}),
        _record("POST", "/v1/payment_intents/pi_123/confirm",
                {"payment_method": "pm_card_visa", "return_url": "http://localhost/x",
                 "expand": ["latest_charge"]}),
        _record("POST", "/v1/payment_intents/pi_123/_authenticate",
                {"client_secret": "pi_123_secret_x", "success": "true"}),
    ]
    assert unaccepted_requests(good) == ""
    bad = _record("POST", "/v1/payment_intents", {"amount": 100, "currency": "usd",
                                                  "payment_method_types": ["card"]})
    assert request_problems(bad) == [
        "POST /v1/payment_intents sends payment_method_types[0]='card', which real Stripe "
        "would not accept: 'payment_method_types' is not a parameter of "
        f"PaymentIntentCreateParams (stripe.params.PaymentIntentCreateParams, stripe-python "
        f"{stripe.VERSION}, API version {stripe.api_version})"]
    assert "'numbr' is not a parameter of PaymentMethodCreateParamsCard" in request_problems(
        _record("POST", "/v1/payment_methods", {"type": "card", "card": {"numbr": "4242"}}))[0]
    assert "'automatic' is not one of ['', 'manual']" in request_problems(
        _record("POST", "/v1/payment_intents", {"amount": 100, "currency": "usd",
                "payment_method_options": {"card": {"capture_method": "automatic"}}}))[0]
    assert "'yes' is not a boolean" in request_problems(
        _record("POST", "/v1/payment_intents", {"amount": 100, "currency": "usd",
                                                "confirm": "yes"}))[0]
    assert "is not an integer" in request_problems(
        _record("POST", "/v1/payment_intents", {"amount": "12.5", "currency": "usd"}))[0]
    assert "lacks the required parameter 'currency'" in request_problems(
        _record("POST", "/v1/payment_intents", {"amount": 100}))[0]
    assert "not a Stripe endpoint" in request_problems(
        _record("POST", "/v1/payment_intents/pi_1/_authenticate", {"force": "true"}))[0]
    assert "not known to call" in request_problems(_record("GET", "/v1/charges", {}))[0]


# --- the full flow against a lab of this module's own, recorded --------------------------

class _Capture(http.server.BaseHTTPRequestHandler):
    """Receives the stand-in's webhook deliveries, exactly as the server receives them, and
    passes each on to the lab's /webhook (the stand-in takes no endpoint but the lab's)."""

    deliveries: list[tuple[bytes, str | None]] = []
    forward_to = ""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.deliveries.append((body, self.headers.get("Stripe-Signature")))
        answer = requests.post(self.forward_to, data=body, timeout=10, headers={
            "Content-Type": self.headers.get("Content-Type") or "application/json",
            "Stripe-Signature": self.headers.get("Stripe-Signature") or ""})
        self.send_response(answer.status_code)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def offline_flow(tmp_path_factory, stripe_request_log):
    """One lab of this module's own (like `fresh_lab`) and a full payment flow against it, with
    every Stripe request recorded: orders, a payment that succeeds, a decline, 3-D Secure
    approved and failed. Webhook events are captured on their way from the stand-in to the
    lab (its registration points at a tap that passes them on), so the test sees the same
    bytes the server verifies."""
    tmp = tmp_path_factory.mktemp("fidelity")
    lab = RunningLab(tmp / "lab.sqlite3", new_webhook_secret(), tmp / "lab.log").start()
    capture = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    _Capture.deliveries = []
    threading.Thread(target=capture.serve_forever, daemon=True).start()
    _Capture.forward_to = lab.url + "/webhook"
    capture_secret = lab.webhook_secret
    try:
        requests.post(f"{lab.backend_url}/_config/webhooks/tutorial-lab", timeout=5, data={
            "url": f"http://127.0.0.1:{capture.server_port}/", "secret": capture_secret,
        }, headers=lab.backend_headers).raise_for_status()
        gateway = lab.gateway()  # recorded too: TUTORIAL_RECORD_STRIPE_REQUESTS is set here
        assert isinstance(gateway.client._requestor._client, stripe_recorder.RecordingHTTPClient)
        raw, normalized = {}, {}

        def observe(name: str, intent: dict) -> None:
            normalized[name] = intent
            raw[name] = gateway.client.v1.payment_intents.retrieve(intent["id"]).to_dict()

        def new_order() -> dict:
            return lab.order("prod_pour_over_kit", 1, "cus_fidelity")["order"]

        order = new_order()
        observe("created", gateway.retrieve_payment_intent(order["payment_intent"]))
        observe("succeeded", pay_with_test_card(gateway, order["payment_intent"], "success"))
        lab.wait_for_status(order["id"], "paid")

        order = new_order()
        observe("declined", pay_with_test_card(gateway, order["payment_intent"], "declined"))
        lab.wait_for_status(order["id"], "attempted")

        order = new_order()
        observe("requires_action", pay_with_test_card(gateway, order["payment_intent"], "3ds"))
        observe("3ds_approved", complete_3ds(gateway, order["payment_intent"], True))
        lab.wait_for_status(order["id"], "paid")

        order = new_order()
        pay_with_test_card(gateway, order["payment_intent"], "3ds")
        observe("3ds_failed", complete_3ds(gateway, order["payment_intent"], False))

        wait_for(lambda: len(_Capture.deliveries) >= 3, timeout=10,
                 message="the stand-in's webhook deliveries")
        events = [verify_event(body, signature, capture_secret)
                  for body, signature in _Capture.deliveries]
        yield {"lab": lab, "raw": raw, "normalized": normalized, "events": events,
               "log": stripe_request_log}
    finally:
        capture.shutdown()
        lab.stop()


def test_every_recorded_request_is_one_real_stripe_accepts(offline_flow):
    records = stripe_recorder.read_recorded(offline_flow["log"])
    endpoints = Counter(endpoint_of(r["method"], r["path"]) for r in records)
    for endpoint in [("POST", "/v1/payment_intents"), ("GET", "/v1/payment_intents/{id}"),
                     ("POST", "/v1/payment_intents/{id}"),
                     ("POST", "/v1/payment_intents/{id}/confirm"),
                     ("POST", "/v1/payment_methods"),
                     ("POST", "/v1/payment_intents/{id}/_authenticate")]:
        assert endpoints[endpoint], f"the flow sent no {endpoint}: the check would be vacuous"
    pids = {r["pid"] for r in records}
    assert len(pids) >= 2, "expected requests from the lab's process and from this one"
    print(f"{len(records)} recorded Stripe requests from {len(pids)} processes: "
          + ", ".join(f"{' '.join(e) if e else 'UNKNOWN'} x{n}"
                      for e, n in sorted(endpoints.items(), key=str)))
    assert unaccepted_requests(records) == ""


def test_recorded_requests_carry_the_pinned_api_version(offline_flow):
    records = stripe_recorder.read_recorded(offline_flow["log"])
    assert records
    versions = Counter(r["stripe_version"] for r in records)
    assert versions == {API_VERSION: len(records)}
    creates = [r for r in records if (r["method"], r["path"]) == ("POST", "/v1/payment_intents")]
    assert creates and all(r["idempotency_key"] for r in creates)
    assert all("authorization" not in json.dumps(r).lower() for r in records)


class _CannedStripe(stripe.HTTPClient):
    """Answers every request with one canned PaymentIntent: nothing leaves this process."""

    name = "canned"

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        return json.dumps({"id": "pi_canned", "object": "payment_intent", "amount": 1340,
                           "currency": "usd", "status": "succeeded", "amount_received": 1340,
                           "client_secret": "pi_canned_secret_x", "latest_charge": "ch_canned",
                           "metadata": {}}), 200, {}

    def close(self):
        pass


def test_test_mode_requests_are_typed_params_too(tmp_path):
    """What the gateway would send to real Stripe in test mode (return_url, card tokens ...).
    The answers are canned, so this proves nothing about Stripe's replies; it checks only the
    parameters, which offline runs never send. Real test mode: tests/test_stripe_test_mode.py."""
    log = tmp_path / "test-mode-requests.jsonl"
    settings = Settings(mode="test", secret_key="sk_test_canned", publishable_key="pk_test_x",
                        webhook_secret="whsec_x")
    gateway = StripeGateway(settings, http_client=stripe_recorder.RecordingHTTPClient(
        log, _CannedStripe()))
    order = {"id": "order_canned", "amount": 1340, "currency": "usd",
             "product_id": "prod_pour_over_kit", "quantity": 1, "customer": "guest"}
    gateway.create_payment_intent(order)
    for scenario in ("success", "declined", "3ds"):
        pay_with_test_card(gateway, "pi_canned", scenario)
    for name, args in [("payment_method_from_token", ("tok_visa",)),
                       ("confirm_payment_intent", ("pi_canned", "pm_card_visa", "http://x/done")),
                       ("create_retry_payment_intent", (order, 2)),
                       ("cancel_payment_intent", ("pi_canned", "abandoned")),
                       ("create_refund", ({**order, "payment_intent": "pi_canned"}, 500,
                                          "order_canned-refund-x"))]:
        if hasattr(gateway, name):  # the checkout page's calls, where present
            getattr(gateway, name)(*args)
    records = stripe_recorder.read_recorded(log)
    confirms = [r for r in records if r["path"].endswith("/confirm")]
    assert confirms and all("return_url" in r["params"] for r in confirms)
    # Test mode takes cards only (no payment waits in `processing` for days).
    creates = [r for r in records if (r["method"], r["path"]) == ("POST", "/v1/payment_intents")]
    assert creates and all(r["params"].get("allowed_payment_method_types[0]") == ["card"]
                           for r in creates), creates
    refunds = [r for r in records if (r["method"], r["path"]) == ("POST", "/v1/refunds")]
    assert [(r["params"]["amount"], r["idempotency_key"]) for r in refunds] == [
        (["500"], "order_canned-refund-x")]
    assert unaccepted_requests(records) == ""


# === 3. Response shapes: what the package reads, against real Stripe's examples ==============

@pytest.fixture(scope="module")
def real_stripe_examples() -> dict:
    folder = find_reference_dir()
    if folder is None:
        pytest.skip(f"{FIXTURES_NAME} (real Stripe's resource examples) not found in a "
                    f"shared/reference/ folder beside {ROOT} or any folder above it; put a copy "
                    "of shared/ beside the clone to run the response-shape checks")
    return json.loads((folder / FIXTURES_NAME).read_text())["resources"]


ABSENT = "absent"  # a field that may be missing altogether

# Every PaymentIntent field the package reads, with the JSON types it copes with. Readers:
# orders_api (id, client_secret), fulfilment (id, metadata.order_id, amount, currency, status,
# last_payment_error.code/decline_code/message), gateway (latest_charge, amount_received,
# client_secret), the checkout page (status, next_action, last_payment_error).
PAYMENT_INTENT_READS: dict[str, set[str]] = {
    "id": {"string"},
    "object": {"string"},
    "amount": {"integer"},
    "amount_received": {"integer"},
    "currency": {"string"},
    "status": {"string"},
    "client_secret": {"string"},
    "metadata": {"object"},
    "metadata.order_id": {"string"},
    "latest_charge": {"string", "null"},  # an id; the package never expands it
    "last_payment_error": {"object", "null"},
    "last_payment_error.code": {"string", "null"},
    "last_payment_error.decline_code": {"string", "null", ABSENT},
    "last_payment_error.message": {"string", "null"},
    "next_action": {"object", "null"},
    "next_action.type": {"string"},
}

# Every Event field the server reads (webhooks.py), and the snapshot fields of data.object it
# compares with the order (fulfilment.settle_order): data.object is a PaymentIntent.
EVENT_READS: dict[str, set[str]] = {
    "id": {"string"},
    "object": {"string"},
    "type": {"string"},
    "data": {"object"},
    "data.object": {"object"},
}
EVENT_SNAPSHOT_READS = ["id", "object", "amount", "currency", "metadata"]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    raise TypeError(type(value))


def lookup(obj: Any, path: str) -> Any:
    """The value at a dotted path; ABSENT if a key is missing; None below a null."""
    for key in path.split("."):
        if obj is None:
            return None
        if not isinstance(obj, dict) or key not in obj:
            return ABSENT
        obj = obj[key]
    return obj


def sdk_json_types(resource: type, path: str) -> set[str] | None:
    """The JSON types stripe-python's resource class declares for a dotted path (None: the
    SDK does not declare the field)."""
    annotation: Any = resource
    for key in path.split("."):
        annotation = _sdk_container(annotation)
        if annotation is None:
            return None
        if isinstance(annotation, tuple):  # a dict: any key, this value type
            annotation = annotation[1]
            continue
        hints = getattr(annotation, "__annotations__", {})
        if key not in hints:
            return None
        annotation = hints[key]
    return _annotation_json_types(annotation)


def _sdk_container(annotation: Any) -> Any:
    """The StripeObject class or ("dict", value type) that a field's annotation nests into."""
    if isinstance(annotation, typing.ForwardRef):
        annotation = getattr(stripe, annotation.__forward_arg__)
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [_sdk_container(a) for a in get_args(annotation) if a is not type(None)]
        return next((m for m in members if m is not None), None)
    if isinstance(origin, type) and issubclass(origin, (dict, stripe.StripeObject)):
        args = get_args(annotation)  # Dict[str, X], UntypedStripeObject[X]: any key
        return ("dict", args[-1] if args else Any)
    if isinstance(annotation, type) and issubclass(annotation, stripe.StripeObject):
        return annotation
    return None


def _annotation_json_types(annotation: Any) -> set[str]:
    if annotation is Any:
        return {"string", "integer", "number", "boolean", "array", "object", "null"}
    if annotation is type(None) or annotation is None:
        return {"null"}
    if isinstance(annotation, (typing.ForwardRef, str)):
        return {"object"}  # another Stripe resource (an expandable field's object form)
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return set().union(*(_annotation_json_types(a) for a in get_args(annotation)))
    if origin is Literal:
        return {json_type(v) for v in get_args(annotation)}
    if origin is list or annotation is list:
        return {"array"}
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if annotation is kind:
            return {name}
    container = origin if isinstance(origin, type) else annotation
    if isinstance(container, type) and issubclass(container, (dict, stripe.StripeObject)):
        return {"object"}
    raise TypeError(f"no JSON type for {annotation!r}")


def shape_problems(reads: dict[str, set[str]], example: dict, resource: type,
                   observed: dict[str, dict], what: str) -> list[str]:
    """Each field the package reads: real Stripe has it (in the example or, for nested fields
    the example leaves out, in stripe-python's resource class) with a JSON type the package
    copes with, and the stand-in's objects (after the gateway) have one of those types too."""
    problems = []
    for path, accepted in reads.items():
        in_example = lookup(example, path)
        sdk_types = sdk_json_types(resource, path)
        if in_example is ABSENT and sdk_types is None:
            problems.append(f"{what}.{path}: real Stripe has no such field")
            continue
        if "." not in path and in_example is ABSENT:
            problems.append(f"{what}.{path}: not in real Stripe's example {what}")
        if in_example not in (ABSENT, None) and json_type(in_example) not in accepted:
            problems.append(f"{what}.{path}: real Stripe's example has a "
                            f"{json_type(in_example)}, the package expects {sorted(accepted)}")
        if sdk_types is not None and not (accepted - {ABSENT}) <= sdk_types | {"null"}:
            problems.append(f"{what}.{path}: the package expects {sorted(accepted)}, "
                            f"stripe-python declares {sorted(sdk_types)}")
        for state, obj in observed.items():
            value = lookup(obj, path)
            parent = lookup(obj, path.rpartition(".")[0]) if "." in path else obj
            if parent is None:
                continue  # e.g. last_payment_error.code when there is no error
            kind = ABSENT if value is ABSENT else json_type(value)
            if kind not in accepted:
                problems.append(f"{what}.{path} from the offline stand-in ({state}): {kind}, "
                                f"real Stripe and the package: {sorted(accepted)}")
    return problems


def test_payment_intent_fields_match_real_stripe(offline_flow, real_stripe_examples):
    normalized = offline_flow["normalized"]
    assert {"created", "succeeded", "declined", "requires_action", "3ds_approved",
            "3ds_failed"} <= set(normalized)
    assert normalized["declined"]["last_payment_error"], "the decline left no error to compare"
    assert normalized["requires_action"]["next_action"], "3-D Secure left no next_action"
    problems = shape_problems(PAYMENT_INTENT_READS, real_stripe_examples["payment_intent"],
                              stripe.PaymentIntent, normalized, "payment_intent")
    assert not problems, "\n".join(problems)


def test_event_fields_match_real_stripe(offline_flow, real_stripe_examples):
    events = {f"{e['type']} {e['id']}": e for e in offline_flow["events"]}
    assert {e["type"] for e in events.values()} >= {"payment_intent.succeeded",
                                                   "payment_intent.payment_failed"}
    problems = shape_problems(EVENT_READS, real_stripe_examples["event"], stripe.Event,
                              events, "event")
    # data.object is the event's PaymentIntent snapshot: the fields the server compares.
    snapshot_reads = {f: PAYMENT_INTENT_READS[f] for f in EVENT_SNAPSHOT_READS}
    problems += shape_problems(snapshot_reads, real_stripe_examples["payment_intent"],
                               stripe.PaymentIntent,
                               {k: e["data"]["object"] for k, e in events.items()},
                               "event.data.object")
    assert not problems, "\n".join(problems)
    # The stand-in's events carry an old API version; the table says so (the server re-reads
    # the PaymentIntent instead of trusting the snapshot).
    if any(e.get("api_version") != API_VERSION for e in events.values()):
        assert "Event api_version" in {entry["topic"] for entry in OFFLINE_DIFFERENCES}


def absorbed_by_normalize(raw: dict[str, dict], normalized: dict[str, dict],
                          examples: dict) -> dict[str, str]:
    """The PaymentIntent fields on which the stand-in differs from real Stripe and the gateway's
    normalize() makes up the difference, found by comparing what it received and returned."""
    example = examples["payment_intent"]
    absorbed = {}
    for state, before in raw.items():
        after = normalized[state]
        for field in set(before) | set(after):
            if field not in after:
                assert field not in example and sdk_json_types(stripe.PaymentIntent, field) \
                    is None, f"normalize() drops {field}, which real Stripe has"
                absorbed[field] = "dropped: not a field of real Stripe's PaymentIntent"
            elif field not in before:
                absorbed[field] = "filled in: missing offline"
            elif field in PAYMENT_INTENT_READS and json_type(before[field]) not in \
                    PAYMENT_INTENT_READS[field] and json_type(after[field]) in \
                    PAYMENT_INTENT_READS[field]:
                absorbed[field] = f"converted: {json_type(before[field])} offline"
    return absorbed


def test_normalize_absorbs_each_shape_difference_and_lists_it(offline_flow,
                                                              real_stripe_examples):
    absorbed = absorbed_by_normalize(offline_flow["raw"], offline_flow["normalized"],
                                     real_stripe_examples)
    print("absorbed by gateway.normalize():", absorbed)
    assert {"amount_received", "latest_charge"} <= set(absorbed)
    topics = {entry["topic"] for entry in OFFLINE_DIFFERENCES}
    assert not set(absorbed) - topics, (
        f"normalize() absorbs {sorted(set(absorbed) - topics)} but OFFLINE_DIFFERENCES (the "
        "table notebook 00 shows) does not list it")


# === 4. One source of truth for the differences =============================================

def test_offline_differences_is_a_complete_table():
    assert OFFLINE_DIFFERENCES
    for entry in OFFLINE_DIFFERENCES:
        assert set(entry) == {"topic", "real", "offline", "lab"}, entry
        assert all(isinstance(v, str) and v.strip() for v in entry.values()), entry
    topics = [entry["topic"] for entry in OFFLINE_DIFFERENCES]
    assert len(topics) == len(set(topics))
    table = differences_markdown()
    lines = table.splitlines()
    assert len(lines) == 2 + len(OFFLINE_DIFFERENCES)
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[2:])
    assert all(line.count(" | ") == 3 for line in lines[2:])  # no stray | inside a cell
    for entry in OFFLINE_DIFFERENCES:
        assert " ".join(entry["lab"].split()) in table
    # Notebook 00 shows exactly this table (tutorial_server.notebook.show_differences).
    from tutorial_server.notebook import show_differences
    assert show_differences().data == table


def test_every_difference_the_gateway_absorbs_in_code_is_listed():
    text = json.dumps(OFFLINE_DIFFERENCES)
    topics = {entry["topic"] for entry in OFFLINE_DIFFERENCES}
    for (method, path), names in OFFLINE_ONLY_PARAMS.items():
        assert f"{method} {path}" in text, f"{method} {path} is not in OFFLINE_DIFFERENCES"
        for name in names:
            assert name in text, f"offline-only parameter {name} is not in OFFLINE_DIFFERENCES"
    # normalize() touches these fields (found by reading its code); each is a row's topic.
    source = inspect.getsource(OfflineGateway.normalize)
    touched = set(re.findall(r'intent(?:\.get\(|\[|\.pop\()"(\w+)"', source)) - {"amount",
                                                                                  "status"}
    assert {"latest_charge", "amount_received", "charges"} <= touched
    assert touched <= topics, f"normalize() handles {sorted(touched - topics)}, not listed"
    # What else the gateway's code (and the customer's side, which plays step 5 through it)
    # does differently per backend, and the row that says so.
    code = inspect.getsource(gateway_module) + inspect.getsource(customer_module)
    for marker, topic in [("offline_number", "Test cards (server side)"),
                          ("return_url", "Payment method types"),
                          ("payment_intents.update", "Confirm with a payment method"),
                          ("_authenticate", "3-D Secure challenge"),
                          ("tokens.retrieve", "Card tokens"),
                          ("create_retry_payment_intent", "Retry after a decline"),
                          ("cancellation_reason", "Canceling a PaymentIntent")]:
        if marker in code:
            assert topic in topics, f"the gateway's {marker} is not explained in a row {topic!r}"
    assert "offline_number" in code and "payment_intents.update" in code  # not vacuous


# === 5. The pinned API version ================================================================

def test_api_version_is_the_one_the_sdk_pins():
    # An SDK upgrade changes stripe.api_version: then update gateway.API_VERSION, the learner's
    # guide and notebook 00 on purpose, and re-run these checks.
    assert API_VERSION == stripe.api_version == "2026-10-28.endive"
    assert f"**{API_VERSION}**" in (ROOT / "docs" / "learner.md").read_text()
