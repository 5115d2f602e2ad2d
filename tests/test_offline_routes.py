"""Routes that exist only for the offline stand-in: the token confirm route and the
proxy that serves the mock Stripe.js and its calls through the merchant server's own address.

Offline they answer, with only what the mock needs; in test mode they do not exist at all (an
app built in-process with sk_test_ keys: a 404 needs no network).
"""
from __future__ import annotations

import json

import pytest
import requests

from tutorial_server.lab import stripe_js_relay

from .app_modes import app_in
from .card_form import THREE_DS
from .running_lab import wait_for

OFFLINE_ONLY = [("POST", "/checkout/order_x/confirm"),
                ("GET", "/offline-stripe/js.stripe.com/v3/"),
                ("POST", "/offline-stripe/v1/tokens"),
                ("POST", "/offline-stripe/v1/payment_intents/pi_x/_authenticate")]
CARD = {"card[number]": "4242424242424242", "card[exp_month]": "12", "card[exp_year]": "2034",
        "card[cvc]": "123", "key": "pk_test_offline_lab", "payment_user_agent": "localstripe"}


def test_offline_only_routes_do_not_exist_in_test_mode(tmp_path):
    client = app_in("test", tmp_path).test_client()
    for method, path in OFFLINE_ONLY:
        r = client.open(path, method=method, json={"token": "tok_visa"},
                        headers={"Origin": "http://localhost"})
        assert r.status_code == 404, (method, path, r.text)
        error = r.get_json()["error"]
        assert error["code"] == "resource_missing" and error["param"] is None  # no such route
    page = client.get("/checkout/order_x")  # the page itself exists in both modes
    assert page.status_code == 404 and "No such order" in page.text
    assert "offline-stripe" not in page.text


def test_offline_only_routes_exist_offline(tmp_path):
    app = app_in("offline", tmp_path)
    rules = {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods}
    assert ("/checkout/<order_id>/confirm", "POST") in rules
    assert ("/offline-stripe/js.stripe.com/v3/", "GET") in rules
    client = app.test_client()
    r = client.post("/checkout/order_x/confirm", json={"token": "tok_visa"})
    assert r.status_code == 404 and r.get_json()["error"]["param"] == "id"  # the order, not the route


def test_the_mock_stripe_js_comes_from_the_merchant_server(lab, customer):
    r = lab.get("/offline-stripe/js.stripe.com/v3/")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript")
    assert "LOCALSTRIPE_BASE_API" in r.text  # the stand-in's mock, byte for byte
    mock = requests.get(f"{lab.backend_url}/js.stripe.com/v3/", timeout=10).content
    # The stand-in's mock byte for byte, then the one line that gives it a version (relay).
    assert r.content.startswith(mock) and r.content[len(mock):] == stripe_js_relay.VERSION_LINE
    again = lab.get("/offline-stripe/js.stripe.com/v3/", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    config = lab.get("/api/config").json()
    assert config["stripe_js_url"] == "/offline-stripe/js.stripe.com/v3/"


def test_the_proxy_passes_on_only_what_the_mock_needs(lab):
    own = {"Origin": lab.url}
    for path in ["/offline-stripe/_config/webhooks/tutorial-lab", "/offline-stripe/_config/data",
                 "/offline-stripe/v1/payment_intents", "/offline-stripe/v1/customers",
                 "/offline-stripe/v1/setup_intents/seti_x/confirm"]:
        for method in ("GET", "POST", "DELETE"):
            r = requests.request(method, lab.url + path, headers=own, timeout=10,
                                 data={"url": "http://attacker.test/", "secret": "whsec_x"})
            assert r.status_code in (404, 405), (method, path, r.status_code)
            assert "error" in r.json()


@pytest.mark.parametrize("headers, data, status, param", [
    ({}, CARD, 403, None),  # no Origin: not the checkout page's fetch
    ({"Origin": "http://attacker.test"}, CARD, 403, None),  # a form on another site
    ({"Origin": "null"}, CARD, 403, None),
    ("own", {**CARD, "card[address_zip]": "1"}, 400, "card[address_zip]"),
    ("own", {**CARD, "key": "sk_test_x"}, 400, "key"),  # never a secret key
    ("own", {k: v for k, v in CARD.items() if k != "key"}, 400, "key"),
    ("own", {**CARD, "card[number]": "4" * 3000}, 413, None),
])
def test_card_tokens_only_from_the_checkout_page_and_only_card_fields(lab, headers, data,
                                                                     status, param):
    headers = {"Origin": lab.url} if headers == "own" else headers
    r = requests.post(f"{lab.url}/offline-stripe/v1/tokens", data=data, headers=headers,
                      timeout=10)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["message"]


def test_a_token_through_the_proxy_pays_an_order(lab, customer):
    r = requests.post(f"{lab.url}/offline-stripe/v1/tokens", data=CARD,
                      headers={"Origin": lab.url}, timeout=10)
    assert r.status_code == 200 and r.json()["id"].startswith("tok_"), r.text
    assert "Access-Control-Allow-Origin" not in r.headers  # the stand-in's CORS stays there
    as_json = requests.post(f"{lab.url}/offline-stripe/v1/tokens", json=CARD,
                            headers={"Origin": lab.url}, timeout=10)
    assert as_json.status_code == 415
    order = lab.order("prod_drip_bags", 1, customer)["order"]
    paid = lab.post(f"/checkout/{order['id']}/confirm", json={"token": r.json()["id"]}).json()
    assert paid["payment_intent"]["status"] == "succeeded"
    lab.wait_for_status(order["id"], "paid")


def _three_d_secure_order(lab, customer) -> tuple[dict, dict]:
    token = requests.post(f"{lab.url}/offline-stripe/v1/tokens",
                          data={**CARD, "card[number]": THREE_DS}, headers={"Origin": lab.url},
                          timeout=10).json()["id"]
    order = lab.order("prod_enamel_mug", 1, customer)["order"]
    intent = lab.post(f"/checkout/{order['id']}/confirm", json={"token": token}).json()
    assert intent["payment_intent"]["status"] == "requires_action"
    return order, intent["payment_intent"]


def test_the_3ds_answer_goes_through_the_proxy_and_is_checked(lab, customer):
    order, intent = _three_d_secure_order(lab, customer)
    url = f"{lab.url}/offline-stripe/v1/payment_intents/{intent['id']}/_authenticate"
    body = {"key": "pk_test_offline_lab", "client_secret": intent["client_secret"]}
    own = {"Origin": lab.url, "Content-Type": "text/plain;charset=UTF-8"}  # as the mock sends
    refused = [
        (dict(params={"success": "true"}, headers={**own, "Origin": "http://attacker.test"}), 403),
        (dict(params={"success": "maybe"}, headers=own), 400),
        (dict(params={}, headers=own), 400),
        (dict(params={"success": "true"}, headers=own,
              body={**body, "client_secret": "pi_other_secret_x"}), 400),
        (dict(params={"success": "true"}, headers=own, body={**body, "extra": "x"}), 400),
        (dict(params={"success": "true"}, headers=own, body={**body, "key": "sk_test_x"}), 400),
        (dict(params={"success": "true"}, headers=own, raw="[" * 2000), 400),  # too deep
        (dict(params={"success": "true"}, headers=own, raw="{" * 3000), 413),
    ]
    for case, status in refused:
        r = requests.post(url, params=case["params"], headers=case["headers"], timeout=10,
                          data=case.get("raw") or json.dumps(case.get("body", body)))
        assert r.status_code == status, (case, r.text)
    assert lab.gateway().retrieve_payment_intent(intent["id"])["status"] == "requires_action"
    bad_id = requests.post(f"{lab.url}/offline-stripe/v1/payment_intents/x%27/_authenticate",
                           params={"success": "true"}, headers=own, data=json.dumps(body),
                           timeout=10)
    assert bad_id.status_code == 404

    r = requests.post(url, params={"success": "true"}, headers=own, data=json.dumps(body),
                      timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
    wait_for(lambda: lab.order_status(order["id"])["status"] == "paid", message="paid")


def test_a_stand_in_that_is_gone_is_a_503_not_a_500(tmp_path):
    client = app_in("offline", tmp_path).test_client()  # port 9: nothing listens there
    r = client.post("/offline-stripe/v1/tokens", data=CARD,
                    headers={"Origin": "http://localhost"})
    assert r.status_code == 503 and r.get_json()["error"]["type"] == "api_connection_error"
    assert client.get("/offline-stripe/js.stripe.com/v3/").status_code == 503
