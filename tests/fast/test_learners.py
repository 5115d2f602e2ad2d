"""Class mode's keys (learners.py), in process: who may join, who may touch an order.

A classmate is a request from another address (REMOTE_ADDR 10.0.0.x); the instructor is the
server's own machine (loopback) or the reset token. The same rules over a real network, from
another network namespace: tests/test_class_walls.py.
"""
from __future__ import annotations

import uuid

import pytest

from tutorial_server.db import connect

ADA, MALLORY = {"REMOTE_ADDR": "10.0.0.7"}, {"REMOTE_ADDR": "10.0.0.66"}
RESET_TOKEN = "instructor-only-token"


@pytest.fixture
def class_app(app):
    app.config.update(LISTEN_HOST="0.0.0.0", RESET_TOKEN=RESET_TOKEN,
                      ROSTER=("ada", "grace", "linus"), JOIN_CODES={"grace": "g-code"})
    return app


def call(client, method, path, who, key=None, json=None, headers=None):
    headers = dict(headers or {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return client.open(path, method=method, json=json, headers=headers, environ_base=who)


def join(client, customer, who=ADA, **extra):
    return call(client, "POST", "/api/class/join", who, json={"customer": customer, **extra})


def test_a_roster_id_joins_once_with_its_code_and_the_instructor_can_issue_a_new_key(class_app):
    client = class_app.test_client()
    first = join(client, "ada")
    assert first.status_code == 201
    key = first.get_json()["learner_key"]
    assert key.startswith("lk_") and len(key) > 30

    again = join(client, "ada", MALLORY)  # Mallory claims Ada's id
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "learner_already_joined"
    assert join(client, "mallory", MALLORY).get_json()["error"]["code"] == "not_on_roster"
    assert join(client, "grace", MALLORY).status_code == 401  # no code
    assert join(client, "grace", MALLORY, code="guess").get_json()["error"]["code"] \
        == "join_code_invalid"
    assert join(client, "grace", code="g-code").status_code == 201

    # The key works until the instructor issues a new one (Ada lost hers), then it is refused.
    order = {"productId": "prod_drip_bags", "quantity": 1, "customer": "ada"}
    assert call(client, "POST", "/api/orders", ADA, key, json=order).status_code == 201
    reissued = join(client, "ada", {"REMOTE_ADDR": "127.0.0.1"})
    assert reissued.status_code == 201 and reissued.get_json()["learner_key"] != key
    stale = call(client, "POST", "/api/orders", ADA, key, json=order)
    assert stale.status_code == 401
    assert stale.get_json()["error"]["code"] == "learner_key_invalid"

    # Only the digest is stored.
    db = connect(class_app.config["DATABASE"])
    stored = [row[0] for row in db.execute("SELECT key_hash FROM learners")]
    assert key not in stored and reissued.get_json()["learner_key"] not in stored


def test_only_an_orders_owner_or_the_instructor_may_change_it(class_app):
    client = class_app.test_client()
    key = join(client, "ada").get_json()["learner_key"]
    answer = call(client, "POST", "/api/orders", ADA, key,
                  json={"productId": "prod_drip_bags", "quantity": 1, "customer": "ada"})
    assert answer.status_code == 201
    created = answer.get_json()
    order_id, access = created["order"]["id"], created["access"]
    assert created["checkout_url"] == f"/checkout/{order_id}?access={access}"

    refused = {
        "cancel": call(client, "POST", f"/api/orders/{order_id}/cancel", MALLORY),
        "sync": call(client, "POST", f"/api/orders/{order_id}/sync", MALLORY),
        "refund": call(client, "POST", f"/api/orders/{order_id}/refund", MALLORY,
                       headers={"Idempotency-Key": str(uuid.uuid4())}),
        "checkout": call(client, "GET", f"/checkout/{order_id}", MALLORY),
        "wrong access": call(client, "GET", f"/checkout/{order_id}?access=guess", MALLORY),
        "confirm": call(client, "POST", f"/checkout/{order_id}/confirm", MALLORY,
                        json={"token": "tok_visa"}),
        "as ada": call(client, "POST", "/api/orders", MALLORY,
                       json={"productId": "prod_drip_bags", "quantity": 1, "customer": "ada"}),
    }
    assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(refused, 403)
    assert all(b"_secret_" not in r.data for r in refused.values())
    assert refused["cancel"].get_json()["error"]["code"] == "order_not_yours"
    assert b"not yours" in refused["checkout"].data
    # Reading the order is anyone's (the dashboard shows it), without a client secret.
    read = call(client, "GET", f"/api/orders/{order_id}", MALLORY)
    assert read.status_code == 200 and b"_secret_" not in read.data
    assert read.get_json()["order"]["status"] == "created"

    # The link Ada's notebook printed opens her checkout page, in any browser that has it.
    page = call(client, "GET", f"/checkout/{order_id}?access={access}", ADA)
    assert page.status_code == 200
    assert f'data-order-access="{access}"'.encode() in page.data
    assert b"_secret_" in page.data
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert call(client, "POST", f"/api/orders/{order_id}/sync", ADA,
                headers={"X-Order-Access": access}).status_code == 200
    # The instructor, from another machine, with the reset token.
    assert call(client, "POST", f"/api/orders/{order_id}/sync", MALLORY,
                key=RESET_TOKEN).status_code == 200
    canceled = call(client, "POST", f"/api/orders/{order_id}/cancel", ADA, key)
    assert canceled.status_code == 200
    assert canceled.get_json()["order"]["status"] == "canceled"


def test_an_order_without_a_key_belongs_to_its_access_code(class_app):
    client = class_app.test_client()
    answer = call(client, "POST", "/api/orders", MALLORY,
                  json={"productId": "prod_drip_bags", "quantity": 1, "customer": "visitor"})
    assert answer.status_code == 201
    order_id, access = answer.get_json()["order"]["id"], answer.get_json()["access"]
    assert call(client, "POST", f"/api/orders/{order_id}/cancel", ADA).status_code == 403
    assert call(client, "POST", f"/api/orders/{order_id}/cancel", MALLORY,
                headers={"X-Order-Access": access}).status_code == 200


def test_on_a_laptop_nothing_changes(app):
    client = app.test_client()
    assert client.get("/api/config").get_json().get("class_mode") is None
    refused = client.post("/api/class/join", json={"customer": "ada"})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["code"] == "class_mode_off"
    created = client.post("/api/orders", json={"productId": "prod_drip_bags", "quantity": 1},
                          environ_base=MALLORY)
    assert created.status_code == 201 and "access" not in created.get_json()
    order_id = created.get_json()["order"]["id"]
    assert client.post(f"/api/orders/{order_id}/cancel", environ_base=ADA).status_code == 200


def test_a_classmate_replaying_an_orders_idempotency_key_gets_no_client_secret(class_app):
    client = class_app.test_client()
    order = {"productId": "prod_drip_bags", "quantity": 1, "customer": "visitor"}
    key = {"Idempotency-Key": "shop-0123456789abcdef"}  # the trace shows it to the room
    first = call(client, "POST", "/api/orders", ADA, json=order, headers=key)
    replay = call(client, "POST", "/api/orders", MALLORY, json=order, headers=key)
    assert first.status_code == replay.status_code == 201
    assert first.get_json()["client_secret"].startswith(first.get_json()["order"]["payment_intent"])
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["order"]["id"] == first.get_json()["order"]["id"]
    assert replay.get_json()["client_secret"] is None and "access" not in replay.get_json()
    # Ada, with the order's access code, still gets her answer again.
    again = call(client, "POST", "/api/orders", ADA, json=order,
                 headers={**key, "X-Order-Access": first.get_json()["access"]})
    assert again.get_json()["client_secret"] == first.get_json()["client_secret"]


def test_a_learner_orders_for_any_id_but_a_classmates_and_the_order_stays_theirs(class_app):
    client = class_app.test_client()
    ada = join(client, "ada").get_json()["learner_key"]
    join(client, "linus", MALLORY)
    order = {"productId": "prod_drip_bags", "quantity": 1}
    as_linus = call(client, "POST", "/api/orders", ADA, ada, json={**order, "customer": "linus"})
    assert as_linus.status_code == 403
    assert as_linus.get_json()["error"]["code"] == "customer_not_yours"
    gift = call(client, "POST", "/api/orders", ADA, ada, json={**order, "customer": "gift_01"})
    assert gift.status_code == 201
    mine = call(client, "POST", "/api/orders", ADA, ada, json=order)  # no customer: hers
    assert mine.get_json()["order"]["customer"] == "ada"
    gift_id = gift.get_json()["order"]["id"]
    assert call(client, "POST", f"/api/orders/{gift_id}/cancel", MALLORY).status_code == 403
    assert call(client, "POST", f"/api/orders/{gift_id}/cancel", ADA, ada).status_code == 200


def test_a_classmate_with_a_key_of_her_own_still_cannot_touch_adas_order(class_app):
    client = class_app.test_client()
    ada = join(client, "ada").get_json()["learner_key"]
    mallory = join(client, "linus", MALLORY).get_json()["learner_key"]  # joined, as someone
    order = call(client, "POST", "/api/orders", ADA, ada,
                 json={"productId": "prod_drip_bags", "quantity": 1}).get_json()["order"]
    for who, key in ((MALLORY, mallory), (MALLORY, "Basic " + mallory), (MALLORY, "lk_forged")):
        headers = {"Authorization": key} if key.startswith("Basic") else {}
        answer = call(client, "POST", f"/api/orders/{order['id']}/cancel", who,
                      None if headers else key, headers=headers)
        assert answer.status_code in (401, 403), (key[:8], answer.status_code)
    assert call(client, "GET", f"/api/orders/{order['id']}", ADA).get_json()["order"][
        "status"] == "created"
    refused = join(client, "mallory", MALLORY)
    assert refused.status_code == 403  # not on the roster


def test_an_order_made_before_class_mode_is_the_instructors_alone(app):
    client = app.test_client()
    made = client.post("/api/orders", json={"productId": "prod_drip_bags", "quantity": 1},
                       environ_base=ADA).get_json()["order"]  # on a laptop: no owner recorded
    app.config.update(LISTEN_HOST="0.0.0.0")  # the same database, now served to a class
    path = f"/api/orders/{made['id']}/cancel"
    assert client.post(path, environ_base=ADA).status_code == 403
    assert client.post(path, environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200
