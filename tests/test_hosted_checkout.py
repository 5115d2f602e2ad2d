"""The lab's stand-in for Stripe's hosted Checkout page over HTTP (lab/hosted_checkout.py): its
contract, hostile input (never a 500, errors in Stripe's shape), and the notebooks' customer
on that page without a browser (notebook/stripes_page.py), against a real lab. The page in a
browser: test_hosted_checkout_browser.py."""
from __future__ import annotations

import pytest

from tutorial_server.notebook.stripes_page import StripesPageRefused, pay_on_stripes_page

from .app_modes import app_in
from .card_form import SUCCESS, card_token
from .running_lab import wait_for


def session_order(lab, customer: str, product: str = "prod_drip_bags") -> dict:
    r = lab.post("/api/orders", json={"productId": product, "quantity": 1, "customer": customer,
                                      "payWith": "checkout_session"})
    assert r.status_code == 201, r.text
    return r.json()


def own(lab) -> dict:
    return {"Origin": lab.url}


def error_of(r, status: int) -> dict:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) >= {"type", "message", "param"}
    return error


def test_the_page_is_offline_only(tmp_path):
    client = app_in("test", tmp_path).test_client()
    for method, path in [("GET", "/offline-checkout/cs_test_abc"),
                         ("POST", "/offline-checkout/cs_test_abc/pay"),
                         ("GET", "/offline-checkout/cs_test_abc/status")]:
        r = client.open(path, method=method, json={"token": "tok_visa"})
        assert r.status_code == 404, (method, path)


def test_a_stand_in_that_is_gone_is_a_503_not_a_500(tmp_path):
    client = app_in("offline", tmp_path).test_client()  # port 9: nothing listens there
    assert client.get("/offline-checkout/cs_test_abc").status_code == 503
    r = client.post("/offline-checkout/cs_test_abc/pay", json={"token": "tok_visa"})
    assert r.status_code == 503 and r.get_json()["error"]["type"] == "api_connection_error"


@pytest.mark.parametrize("session_id", [
    "cs_test_doesnotexist", "cs_live_abc", "pi_123", "cs_test_" + "a" * 300, "cs_test_a%20b",
    "cs_test_%3Cscript%3E", "cs_test_abc%00", "cs_test_abc.json"])
def test_unknown_or_malformed_session_ids_are_404(lab, session_id):
    page = lab.get(f"/offline-checkout/{session_id}")
    assert page.status_code == 404 and "This checkout link is not valid" in page.text
    assert "<script>" not in page.text
    error = error_of(lab.post(f"/offline-checkout/{session_id}/pay", json={"token": "tok_x"},
                              headers=own(lab)), 404)
    assert error["code"] == "resource_missing"
    error_of(lab.get(f"/offline-checkout/{session_id}/status"), 404)


def test_the_page_shows_the_sessions_amount_and_no_secret(lab, customer):
    answer = session_order(lab, customer, "prod_coffee_beans")
    page = lab.get(answer["checkout_session"]["url"])
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "Pay ₹1,340.00" in page.text and "Coffee beans, 1 kg" in page.text
    assert "hosted Checkout page — offline only" in page.text
    assert "_secret_" not in page.text and "sk_test" not in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("kwargs, status, param", [
    ({"data": "token=tok_x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
     415, None),
    ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, None),
    ({"json": ["tok_x"]}, 400, None),
    ({"json": {}}, 400, "token"),
    ({"json": {"token": 42}}, 400, "token"),
    ({"json": {"token": "tok_bad token"}}, 400, "token"),
    ({"json": {"token": "tok_doesnotexist"}}, 400, "token"),
    ({"json": {"token": "tok_x", "amount": 1}}, 400, "amount"),
])
def test_hostile_pay_requests_are_4xx_in_stripes_shape(lab, customer, kwargs, status, param):
    answer = session_order(lab, customer)
    url = answer["checkout_session"]["url"] + "/pay"
    headers = {**own(lab), **kwargs.pop("headers", {})}
    error = error_of(lab.post(url, headers=headers, **kwargs), status)
    if param:
        assert error["param"] == param
    assert lab.order_status(answer["order"]["id"])["status"] == "created"


def test_another_sites_page_cannot_pay(lab, customer):
    answer = session_order(lab, customer)
    token = card_token(lab, SUCCESS)
    r = lab.post(answer["checkout_session"]["url"] + "/pay", json={"token": token},
                 headers={"Origin": "http://evil.example"})
    assert error_of(r, 403)["code"] == "cross_site_request"
    r = lab.post(answer["checkout_session"]["url"] + "/pay", json={"token": token},
                 headers={"Host": "evil.example"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "host_not_allowed"


def test_a_paid_session_is_refused_and_its_page_says_paid(lab, customer):
    answer = session_order(lab, customer)
    paid = pay_on_stripes_page(lab.url, answer["checkout_session"])
    assert paid["payment_intent"]["status"] == "succeeded" and "client_secret" not in \
        paid["payment_intent"]
    assert paid["next_url"].endswith(f"/checkout/{answer['order']['id']}/complete?session_id="
                                     + answer["checkout_session"]["id"])
    wait_for(lambda: lab.order_status(answer["order"]["id"])["status"] == "paid",
             message="the webhook to settle the order")
    url = answer["checkout_session"]["url"]
    wait_for(lambda: lab.get(url).status_code == 404, message="the session to complete")
    assert "already paid" in lab.get(url).text
    r = lab.post(url + "/pay", json={"token": card_token(lab, SUCCESS)}, headers=own(lab))
    assert error_of(r, 409)["code"] == "checkout_session_complete"
    status = lab.get(url + "/status").json()
    assert status["session"]["status"] == "complete" and status["next_url"] == paid["next_url"]
    assert status["payment_intent"]["client_secret"] is None
    with pytest.raises(StripesPageRefused):
        pay_on_stripes_page(lab.url, answer["checkout_session"])
    assert lab.order_status(answer["order"]["id"])["amount_paid"] == \
        lab.order_status(answer["order"]["id"])["amount"]  # paid once


def test_an_expired_session_is_404(lab, customer):
    answer = session_order(lab, customer)
    assert lab.post(f"/api/orders/{answer['order']['id']}/cancel", json={}).status_code == 200
    url = answer["checkout_session"]["url"]
    assert lab.get(url).status_code == 404
    error_of(lab.post(url + "/pay", json={"token": "tok_x"}, headers=own(lab)), 404)
    error_of(lab.get(url + "/status"), 404)


def test_the_notebooks_customer_declined_then_paid(lab, customer):
    answer = session_order(lab, customer)
    declined = pay_on_stripes_page(lab.url, answer["checkout_session"]["id"], "declined")
    assert declined["payment_intent"]["status"] == "requires_payment_method"
    assert declined["payment_intent"]["last_payment_error"]["code"] == "card_declined"
    assert declined["next_url"] is None
    paid = pay_on_stripes_page(lab.url, answer["checkout_session"]["id"])
    assert paid["payment_intent"]["id"] == declined["payment_intent"]["id"]  # as on Stripe
    order = wait_for(lambda: (o := lab.order_status(answer["order"]["id"]))["status"] == "paid"
                     and o, message="paid")
    assert order["payment_intent"] == paid["payment_intent"]["id"]


def test_the_notebooks_customer_3ds_failed_then_approved(lab, customer):
    answer = session_order(lab, customer)
    failed = pay_on_stripes_page(lab.url, answer["checkout_session"], "3ds", approve=False)
    assert failed["payment_intent"]["status"] == "requires_payment_method"
    assert failed["payment_intent"]["last_payment_error"]["code"] == \
        "payment_intent_authentication_failure"
    approved = pay_on_stripes_page(lab.url, answer["checkout_session"], "3ds", approve=True)
    assert approved["payment_intent"]["status"] == "succeeded" and approved["next_url"]
    wait_for(lambda: lab.order_status(answer["order"]["id"])["status"] == "paid", message="paid")


def test_the_3ds_client_secret_is_given_only_while_the_challenge_waits(lab, customer):
    answer = session_order(lab, customer)
    url = answer["checkout_session"]["url"]
    r = lab.post(url + "/pay", json={"token": card_token(lab, "4000002760003184")},
                 headers=own(lab))
    intent = r.json()["payment_intent"]
    assert intent["status"] == "requires_action"
    assert intent["client_secret"].startswith(intent["id"] + "_secret_")
    assert lab.get(url + "/status").json()["payment_intent"]["client_secret"] is None
