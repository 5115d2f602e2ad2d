"""Trust boundaries: what a web page, a classmate or a slow client can do to a lab.

Each test plays the attacker against a real lab (its own process, its own offline Stripe, on
127.0.0.1) and then checks the outcome, not only the status: nothing read, nothing changed.
A "foreign Host" is what a browser sends after a page on another site has rebound its own
name to 127.0.0.1 (DNS rebinding); tests send that header themselves, no name is resolved.
"""
from __future__ import annotations

import json
import re
import socket
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from tutorial_server.lab.app import create_lab_app
from tutorial_server.config import load_settings
from tutorial_server.parsing import MAX_JSON_DEPTH, json_depth
from tutorial_server.security import HostPolicy, escape_for_log
from tutorial_server.notebook.customer import pay_with_test_card

from .running_lab import RunningLab, drop_webhooks, new_webhook_secret, wait_for
from .signing import sign

FOREIGN = "evil.example"


def routes(order_id: str) -> list[tuple[str, str]]:
    """Every (method, path) the server has, each URL variable filled in with a real order."""
    values = {"order_id": order_id, "filename": "dashboard.js", "customer_id": "cus_trust"}
    found = []
    for rule in _url_map().iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m.group(1), "trust_1"), rule.rule)
        for method in sorted(rule.methods - {"OPTIONS", "HEAD"}):
            found.append((method, path))
    return found


def _url_map():
    """The app's routes, from an app made here (no server, no Stripe call)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(load_settings({}), db_path=Path(tmp) / "routes.sqlite3")
        return create_lab_app(settings, backend_url="http://127.0.0.1:9").url_map


def assert_error_shape(response, code: str | None = None) -> dict:
    error = response.json()["error"]
    assert set(error) >= {"type", "message", "param"}, error
    if code:
        assert error.get("code") == code, error
    return error


def reset_token(lab) -> str:
    page = lab.get("/dashboard").text
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def backend_intents(lab) -> list[str]:
    r = requests.get(f"{lab.backend_url}/v1/payment_intents?limit=100",
                     headers=lab.backend_headers, timeout=10)
    return sorted(pi["id"] for pi in r.json()["data"])


# --- 1. the Host allow-list --------------------------------------------------------------------

def test_host_policy_names():
    local = HostPolicy(4242)
    for host in ("127.0.0.1:4242", "localhost:4242", "[::1]:4242", "LOCALHOST:4242"):
        assert local.allows(host), host
    for host in ("evil.example:4242", "127.0.0.1:4243", "192.168.1.20:4242",
                 "localhost.evil.example:4242", "127.0.0.1.nip.io:4242", "", "a b", None):
        assert not local.allows(host), host
    room = HostPolicy(4242, ["classroom.test", "teacher.lan:8080"], class_mode=True)
    for host in ("classroom.test:4242", "teacher.lan:8080", "192.168.1.20:4242", "[fe80::1]:4242",
                 f"{socket.gethostname()}:4242"):
        assert room.allows(host), host
    assert not room.allows("evil.example:4242") and not room.allows("teacher.lan:4242")
    # Through jupyter-server-proxy (a request the lab marked as proxied: its Unix socket or its
    # secret header, lab/proxied.py) the Host is the browser's, Jupyter's. Without that proof
    # a proxied lab applies the plain allow-list: a port forward gives a page any port.
    proxied = HostPolicy(5123, proxied=True)
    assert proxied.allows("127.0.0.1:8888", via_proxy=True)
    assert proxied.allows("hub.example.org", via_proxy=True)
    for host in ("127.0.0.1:8888", "hub.example.org", f"{FOREIGN}:5123", f"{FOREIGN}:8888"):
        assert not proxied.allows(host), host
    assert not local.allows("hub.example.org", via_proxy=True)  # not a proxied lab at all
    assert proxied.allows_origin("https://hub.example.org", "hub.example.org", via_proxy=True)
    assert not proxied.allows_origin("https://evil.example", "hub.example.org", via_proxy=True)
    assert not proxied.allows_origin("https://hub.example.org", "hub.example.org")
    assert not proxied.allows_origin(f"http://{FOREIGN}:8888", f"{FOREIGN}:8888")
    # Origins are compared with the configured names, never with the request's own Host.
    assert not local.allows_origin(f"http://{FOREIGN}:4242", f"{FOREIGN}:4242")
    assert local.allows_origin("http://localhost:4242", f"{FOREIGN}:4242")
    assert not local.allows_origin("null", "localhost:4242")
    assert not local.allows_origin("http://localhost", "localhost:4242")  # port 80: not us
    assert not proxied.allows_origin(f"http://{FOREIGN}", "127.0.0.1:5123")  # direct request
    assert proxied.allows_origin("http://127.0.0.1:5123", "127.0.0.1:5123")


def test_a_foreign_host_is_refused_on_every_route(lab):
    order = lab.order("prod_enamel_mug", 1, "cus_trust_host")["order"]
    port = lab.url.rsplit(":", 1)[1]
    before = lab.snapshot()
    checked = []
    for method, path in routes(order["id"]):
        for host in (f"{FOREIGN}:{port}", FOREIGN, f"127.0.0.1.{FOREIGN}:{port}"):
            r = requests.request(method, lab.url + path, headers={"Host": host},
                                 json={"confirm": "reset"} if method == "POST" else None,
                                 timeout=10)
            assert r.status_code == 400, (method, path, host, r.status_code, r.text[:200])
            # Nothing of the lab in the answer: no order id, no client secret, no customer.
            assert order["id"] not in r.text and "secret" not in r.text.lower()
            assert "cus_trust_host" not in r.text
            if method != "GET" or path.startswith(("/api", "/webhook")):
                assert_error_shape(r, "host_not_allowed")
            else:
                assert r.headers["Content-Type"].startswith("text/html")
                assert "Wrong address" in r.text and "<script" not in r.text
            checked.append((method, path))
    assert lab.snapshot() == before  # nothing created, canceled, paid or reset
    # The same requests with the lab's own names are answered.
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        r = requests.get(f"{lab.url}/api/orders/{order['id']}", headers={"Host": host}, timeout=10)
        assert r.status_code == 200 and r.json()["order"]["id"] == order["id"]
    print(f"\nforeign Host refused on {len(set(checked))} method+route pairs")


def test_a_page_on_another_host_cannot_read_the_lab_after_dns_rebinding(lab):
    """The three reads the issue found: the dashboard's data, a checkout page's client
    secret, and the checkout's return_url built from the attacker's Host."""
    created = lab.order("prod_coffee_beans", 1, "cus_trust_rebind")
    port = lab.url.rsplit(":", 1)[1]
    foreign = {"Host": f"{FOREIGN}:{port}"}
    dashboard = lab.get("/api/dashboard", headers=foreign)
    checkout = lab.get(f"/checkout/{created['order']['id']}", headers=foreign)
    assert dashboard.status_code == checkout.status_code == 400
    for r in (dashboard, checkout):
        assert created["client_secret"] not in r.text and "cus_trust_rebind" not in r.text
    # The learner's own page still has it.
    assert created["client_secret"] in lab.get(f"/checkout/{created['order']['id']}").text


def test_reset_from_a_foreign_host_changes_nothing(fresh_lab):
    lab = fresh_lab
    lab.order("prod_enamel_mug", 2, "cus_trust_reset")
    before, intents = lab.snapshot(), backend_intents(lab)
    token = reset_token(lab)  # even with a real page token, as if read from an open page
    port = lab.url.rsplit(":", 1)[1]
    evil = f"http://{FOREIGN}:{port}"
    attempts = [
        {"Host": f"{FOREIGN}:{port}", "Origin": evil},  # rebinding: Origin matches the Host
        {"Host": f"{FOREIGN}:{port}", "Referer": evil + "/dashboard"},
        {"Origin": evil},  # a cross-site fetch to the real name
        {"Origin": "http://localhost:1"},  # another program on this machine
    ]
    for headers in attempts:
        r = lab.post("/dashboard/reset", json={"confirm": "reset"},
                     headers={**headers, "X-CSRF-Token": token})
        assert r.status_code in (400, 403), (headers, r.text)
        assert_error_shape(r)
    assert lab.snapshot() == before
    assert backend_intents(lab) == intents and intents
    # The dashboard itself still resets the lab.
    done = lab.post("/dashboard/reset", json={"confirm": "reset"},
                    headers={"Origin": lab.url, "X-CSRF-Token": token})
    assert done.status_code == 200, done.text
    assert lab.query("SELECT COUNT(*) AS n FROM orders")[0]["n"] == 0


# --- 2. no state change from another site ------------------------------------------------------

def test_cross_site_form_and_text_plain_posts_change_nothing(lab):
    order = lab.order("prod_drip_bags", 1, "cus_trust_csrf")["order"]
    before, intents = lab.snapshot(), backend_intents(lab)
    targets = [
        ("/api/orders", "productId=prod_drip_bags&quantity=1"),
        (f"/api/orders/{order['id']}/cancel", ""),
        (f"/api/orders/{order['id']}/sync", ""),
        (f"/checkout/{order['id']}/confirm", "token=tok_visa"),
        ("/dashboard/reset", "confirm=reset"),
    ]
    # What a browser sends for a form or a no-preflight fetch on another site (with Origin),
    # and the same without Origin (an old browser, or a privacy extension that strips it).
    simple_types = ["application/x-www-form-urlencoded", "text/plain",
                    "multipart/form-data; boundary=x"]
    for path, body in targets:
        for content_type in simple_types:
            for origin in ("https://attacker.example", "null", None):
                headers = {"Content-Type": content_type}
                if origin:
                    headers["Origin"] = origin
                text_body = json.dumps({"token": "tok_visa", "confirm": "reset",
                                        "productId": "prod_drip_bags", "quantity": 1}) \
                    if content_type == "text/plain" else body
                r = lab.post(path, data=text_body, headers=headers)
                expected = 403 if origin else 415
                assert r.status_code == expected, (path, headers, r.status_code, r.text)
                assert_error_shape(r, "cross_site_request" if origin else "json_required")
        # JSON from another site's page (after a CORS preflight we never approve) is refused too.
        r = lab.post(path, json={}, headers={"Origin": "https://attacker.example"})
        assert r.status_code == 403
    assert lab.snapshot() == before
    assert backend_intents(lab) == intents
    assert lab.order_status(order["id"])["status"] == "created"
    # The legitimate client is unchanged: JSON, or a script's bare POST without a body.
    assert lab.post(f"/api/orders/{order['id']}/sync").status_code == 200
    assert lab.post(f"/api/orders/{order['id']}/cancel", json={},
                    headers={"Origin": lab.url}).json()["order"]["status"] == "canceled"


def test_a_real_browser_on_another_site_cannot_cancel_an_order(lab, browser, tmp_path):
    """Chromium on a page of another origin (another port of 127.0.0.1, served here) submits
    a form and sends a text/plain fetch at the lab: the order stays as it was."""
    import http.server
    import threading

    order = lab.order("prod_drip_bags", 1, "cus_trust_browser")["order"]
    cancel = f"{lab.url}/api/orders/{order['id']}/cancel"
    page_html = f"""<!doctype html><html><body>
<form id="f" method="post" action="{cancel}" target="sink"><input name="a" value="1"></form>
<iframe name="sink"></iframe>
<script>
fetch("{lab.url}/api/orders/{order['id']}/sync", {{method: "POST", mode: "no-cors",
  headers: {{"Content-Type": "text/plain"}}, body: "{{}}"}}).finally(() => {{
  document.getElementById("f").submit(); document.title = "sent"; }});
</script></body></html>""".encode()

    class Attacker(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page_html)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_context().new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        page.wait_for_function("document.title === 'sent'", timeout=10_000)
        page.wait_for_timeout(1500)  # let the form post land
    finally:
        server.shutdown()
    assert lab.order_status(order["id"])["status"] == "created"
    log = lab.log()
    assert f"POST /api/orders/{order['id']}/cancel 403" in log  # it did arrive, and was refused


# --- 5. JSON nesting -------------------------------------------------------------------------

def test_json_depth_counts_without_parsing():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{"}]}') == 3
    # Linear: escaped quotes that never close a string cost one pass, not one per quote
    # (a first version took 20 s on this 42 KB body).
    started = time.perf_counter()
    assert json_depth(b'"' + b'\\"' * 21_000 + b"[") == 0
    assert json_depth(b'[\\"' * 21_000) == 1  # all but the first [ are inside one string
    assert json_depth(b'["\\\\", ' * 1000) == 1000  # an escaped backslash ends no string
    print(f"\n42 KB of escaped quotes scanned in {(time.perf_counter() - started) * 1000:.0f} ms")
    assert json_depth(b"[" * 100_000) == 100_000
    assert json_depth(rb'["\"[[[["]') == 1
    assert json_depth(b"") == 0


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b'{"a":' * (depth // 2) + b"[" * (depth - depth // 2) + inner \
        + b"]" * (depth - depth // 2) + b"}" * (depth // 2)


def test_deeply_nested_json_gets_400_at_every_entry_point(lab):
    order = lab.order("prod_drip_bags", 1, "cus_trust_nest")["order"]
    before = lab.snapshot()
    deep = nested(5000)
    assert json_depth(nested(MAX_JSON_DEPTH)) == MAX_JSON_DEPTH
    entry_points = ["/api/orders", f"/api/orders/{order['id']}/cancel",
                    f"/api/orders/{order['id']}/sync", f"/checkout/{order['id']}/confirm",
                    "/dashboard/reset"]
    for path in entry_points:
        for body in (deep, b"[" * 5000, nested(MAX_JSON_DEPTH + 1)):
            r = lab.post(path, data=body, headers={"Content-Type": "application/json"})
            assert r.status_code == 400, (path, r.status_code, r.text[:200])
            assert_error_shape(r, "json_too_deep")
    # The webhook too, correctly signed: the signature is right, the body is still refused.
    for body in (deep, b"[" * 5000):
        r = lab.post("/webhook", data=body, headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(body, lab.webhook_secret)})
        assert r.status_code == 400 and assert_error_shape(r, "json_too_deep")
    assert lab.snapshot() == before
    # Nesting within the limit is still just JSON (here: a wrong order, refused as such).
    r = lab.post("/api/orders", data=nested(MAX_JSON_DEPTH), headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].get("code") != "json_too_deep"
    assert "RecursionError" not in lab.log() and "Traceback" not in lab.log()


# --- 6. the log --------------------------------------------------------------------------------

def test_escape_for_log_keeps_one_line():
    for raw in ("a\nb", "a\r\nb", "a\u2028b", "a\x1b[31mb", "a\x85b", "a\x0bb", "a\x00b"):
        escaped = escape_for_log(raw)
        assert len(escaped.splitlines()) == 1 and escaped.isprintable(), repr(escaped)
    assert escape_for_log("/checkout/order_1") == "/checkout/order_1"


def test_no_log_line_can_be_forged(lab):
    marker = "FORGED-" + str(time.time_ns())
    attempts = [f"/%0a{marker} INFO tutorial_server: order paid",
                f"/api/orders/x%0d%0a{marker}", f"/%e2%80%a8{marker}", f"/%c2%85{marker}",
                f"/%1b[2K%0d{marker}", f"/dashboard%0a%0a{marker}"]
    for path in attempts:
        assert requests.get(lab.url + path, timeout=10).status_code in (400, 404)
        requests.post(lab.url + path, json={}, timeout=10)
    # A correctly signed event whose id and type carry line breaks (the server logs both).
    event = {"id": f"evt_x\n{marker}", "type": f"customer.created\r\n{marker}",
             "object": "event", "data": {"object": {}}}
    assert lab.post_event(event).status_code == 200
    # The server logs the event while it handles it, after every request above: wait for that
    # line (a log written later than the answer would otherwise go unread), not for a while.
    wait_for(lambda: escape_for_log(event["id"]) in lab.log(), message="the event's log line")
    log = lab.log()
    assert marker in log  # the requests were logged...
    for line in log.splitlines():  # ...and each of them on its own line, escaped
        assert not line.startswith(marker), line
        if marker in line:
            assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \w+ [\w.]+: ", line), line
    for text in log.split("\n"):
        assert "\r" not in text and "\u2028" not in text and "\x1b" not in text


# --- 4. sized for a class ----------------------------------------------------------------------

def _open_slow(port: int, n: int) -> list[socket.socket]:
    """n connections that each start a request and never finish its headers."""
    head = f"GET /api/products HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(head)
        socks.append(s)
    return socks


def _closed_by_server(s: socket.socket, timeout: float) -> float | None:
    """Seconds until the server closes the connection, or None if it is still open."""
    started = time.monotonic()
    s.settimeout(timeout)
    try:
        while s.recv(1024):
            pass
    except socket.timeout:
        return None
    except OSError:
        pass
    return time.monotonic() - started


def test_150_slow_connections_do_not_lock_out_a_normal_request(lab):
    port = int(lab.url.rsplit(":", 1)[1])
    socks = _open_slow(port, 150)
    try:
        for s in socks:  # one more header byte each: they are alive, just slow
            s.sendall(b"X")
        started = time.monotonic()
        r = requests.get(lab.url + "/api/products", timeout=30)
        elapsed = time.monotonic() - started
        assert r.status_code == 200 and r.json()["data"]
        print(f"\nwith 150 slow connections open, a normal request took {elapsed * 1000:.0f} ms")
    finally:
        for s in socks:
            s.close()


def test_a_client_that_stops_sending_is_dropped_within_seconds(lab):
    from tutorial_server.lab.http_server import SILENCE_TIMEOUT
    port = int(lab.url.rsplit(":", 1)[1])
    started = time.monotonic()
    silent = socket.create_connection(("127.0.0.1", port))
    halfway = _open_slow(port, 1)[0]
    waited = []
    for s in (silent, halfway):
        assert _closed_by_server(s, SILENCE_TIMEOUT + 10) is not None  # not waitress's 120 s
        waited.append(time.monotonic() - started)
    print(f"\nsilent client dropped after {waited[0]:.1f} s, one that stopped mid-request "
          f"after {waited[1]:.1f} s (timeout {SILENCE_TIMEOUT} s)")


def test_a_client_that_trickles_its_request_is_dropped_at_the_deadline():
    """Slowloris: a byte a second restarts the silence timeout, so a request also has a
    deadline. A server of the lab's kind with a 2 s deadline (the lab's is REQUEST_DEADLINE)."""
    import threading

    from tutorial_server.lab.http_server import HTTPServer as _HTTPServer

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = _HTTPServer("127.0.0.1", 0, app, request_deadline=2)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        s = _open_slow(server.server_port, 1)[0]
        started = time.monotonic()
        s.settimeout(1)
        closed = False
        while time.monotonic() - started < 15 and not closed:
            try:
                s.sendall(b"X")
                closed = s.recv(1) == b""
            except socket.timeout:
                pass
            except OSError:
                closed = True
        elapsed = time.monotonic() - started
        assert closed, "a trickling client kept its connection for 15 s"
        print(f"\ntrickling client dropped after {elapsed:.1f} s (deadline 2 s)")
        assert requests.get(f"http://127.0.0.1:{server.server_port}/", timeout=5).text == "ok"
    finally:
        server.shutdown()
        server.server_close()


# --- 7. the offline stand-in -------------------------------------------------------------------

@pytest.fixture
def quick_lab(tmp_path):
    """A lab whose background reconcile and webhook watchdog run every second."""
    running = RunningLab(tmp_path / "lab.sqlite3", new_webhook_secret(), tmp_path / "lab.log",
                         env={"TUTORIAL_RECONCILE_SECONDS": "1"})
    yield running.start()
    if running.process is not None:
        running.stop()


def _hijack(lab, url: str, secret: str) -> None:
    """The lab's webhook registration changed behind its back (what a web page's cross-site
    form post did before the stand-in wanted the lab's key; here with the key)."""
    import urllib.parse
    import urllib.request
    data = urllib.parse.urlencode({"url": url, "secret": secret}).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"{lab.backend_url}/_config/webhooks/tutorial-lab", data=data, method="POST",
        headers=lab.backend_headers), timeout=5)


def test_a_hijacked_webhook_registration_is_detected_and_healed(quick_lab):
    lab = quick_lab
    assert "checks the webhook registration" in lab.log()
    healed = lambda: lab.get("/api/dashboard").json()["background"]["webhook_watchdog"]["healed"]
    wait_for(lambda: lab.get("/api/dashboard").json()["background"]["webhook_watchdog"]
             ["checks"] >= 1, 15, message="a first check")
    assert healed() == 0  # the lab's own registration passes its check
    for hijack in ("elsewhere", "wrong secret"):
        before = healed()
        if hijack == "elsewhere":
            drop_webhooks(lab)  # deliveries go to a receiver that is not the lab
        else:  # deliveries still reach the lab, signed with the attacker's secret: all refused
            _hijack(lab, lab.url + "/webhook", new_webhook_secret())
        started = time.monotonic()
        wait_for(lambda: healed() > before, 20, message=f"the watchdog to heal ({hijack})")
        print(f"\nregistration hijacked ({hijack}): healed after {time.monotonic() - started:.1f} s")
        # Healed: a payment made now is fulfilled by its webhook, as before the attack.
        order = lab.order("prod_drip_bags", 1, "cus_trust_watchdog")["order"]
        pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
        lab.wait_for_status(order["id"], "paid")
        events = lab.query("SELECT outcome FROM webhook_events WHERE payment_intent = ?",
                           order["payment_intent"])
        assert [e["outcome"] for e in events] == ["fulfilled"]
    log = lab.log()
    assert log.count("registered this lab's webhook again") == 2
    # The checks are answered but never recorded as the lab's events or deliveries.
    assert not lab.query("SELECT * FROM webhook_events WHERE type LIKE 'customer.%'")
    assert all(d["type"] is None or not d["type"].startswith("customer.")
               for d in lab.get("/api/dashboard").json()["deliveries"])


def test_an_order_whose_webhook_was_lost_is_settled_by_the_background_reconcile(quick_lab):
    lab = quick_lab
    lost = drop_webhooks(lab)
    order = lab.order("prod_pour_over_kit", 1, "cus_trust_background")["order"]
    waiting = lab.order("prod_enamel_mug", 1, "cus_trust_background")["order"]
    pay_with_test_card(lab.gateway(), order["payment_intent"], "success")
    paid_at = time.monotonic()
    wait_for(lambda: lost(order["payment_intent"]), 10, message="the delivery to be lost")
    settled = lab.wait_for_status(order["id"], "paid", timeout=20)
    print(f"\nlost webhook: order paid by the background reconcile "
          f"{time.monotonic() - paid_at:.1f} s after the payment (interval 1 s)")
    assert (settled["amount_paid"], settled["amount_due"]) == (settled["amount"], 0)
    assert len(lab.query("SELECT * FROM inventory WHERE order_id = ?", order["id"])) == 1
    # Settled by asking Stripe, not by any webhook; the unpaid order is left alone.
    assert not lab.query("SELECT * FROM webhook_events WHERE payment_intent = ?",
                         order["payment_intent"])
    assert lab.order_status(waiting["id"])["status"] == "created"
    status = lab.get("/api/dashboard").json()["background"]["reconcile"]
    assert status["enabled"] and status["interval_seconds"] == 1
    assert status["settled_total"] >= 1 and status["last_run"] and status["last_error"] is None
    assert "background reconcile: 1 paid now (their webhook never arrived)" in lab.log()


def test_the_stand_ins_files_are_readable_by_their_owner_only(lab):
    import os
    import stat

    # It keeps its store in memory (no /tmp/localstripe.pickle: tests/test_stand_in.py).
    lab.order("prod_drip_bags", 1, "cus_trust_files")
    stand_in_log = lab.db_path.parent / f"{lab.db_path.name}.localstripe.log"
    assert stat.S_IMODE(os.stat(stand_in_log).st_mode) & 0o077 == 0


def test_the_dashboard_page_shows_the_background_reconcile(lab):
    page = lab.get("/dashboard").text
    summary = lab.get("/api/dashboard").json()["background"]["summary"]
    assert summary.startswith("background reconcile every 30 s")
    assert '<span id="background">background reconcile every 30 s' in page
