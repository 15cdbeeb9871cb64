"""The /_fake/ HTTP control surface used by other processes."""

from __future__ import annotations

import time

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.fake_stripe.helpers import http


@pytest.mark.usefixtures("meter")
def test_state_summary(client: stripe.StripeClient, fake: FakeStripe, customer: str) -> None:
    for value in ("2", "3"):
        client.v1.billing.meter_events.create(
            {"event_name": "api_calls", "payload": {"stripe_customer_id": customer, "value": value}}
        )
    price = fake.create_price()
    sub = fake.create_subscription(customer, price["id"], quantity=4)
    status, body, headers = http(fake.url, "GET", "/_fake/state")
    assert status == 200
    assert headers["Request-Id"].startswith("req_")
    assert body["meter_totals"] == [
        {"event_name": "api_calls", "customer": customer, "total": 5, "events": 2}
    ]
    assert body["events"]["accepted"] == 2
    assert body["subscription_items"] == [
        {
            "id": sub["items"]["data"][0]["id"],
            "subscription": sub["id"],
            "price": price["id"],
            "quantity": 4,
        }
    ]
    assert body["requests"] == {"total": 2, "by_route": {"POST /v1/billing/meter_events": 2}}
    assert body["max_concurrency_per_customer_meter"] == [
        {"event_name": "api_calls", "customer": customer, "max": 1}
    ]
    assert body == {**fake.summary(), "now": body["now"]}


def test_reset(client: stripe.StripeClient, fake: FakeStripe, customer: str) -> None:
    client.v1.customers.retrieve(customer)
    fake.faults.add("status", status=500)
    fake.clock.advance(10_000)
    status, body, _ = http(fake.url, "POST", "/_fake/reset", {})
    assert (status, body) == (200, {"reset": True})
    assert fake.faults.rules == []
    assert fake.request_log == []
    assert client.v1.customers.list().data == []
    assert abs(fake.clock.now() - time.time()) < 1_000  # back on real time


def test_faults_endpoints(client: stripe.StripeClient, fake: FakeStripe) -> None:
    status, body, _ = http(
        fake.url,
        "POST",
        "/_fake/faults",
        {"seed": 3, "faults": [{"kind": "status", "status": 503, "times": 1}]},
    )
    assert status == 200
    assert [(r["kind"], r["status"], r["times"]) for r in body["rules"]] == [("status", 503, 1)]
    with pytest.raises(stripe.APIError):
        client.v1.customers.list()
    http(fake.url, "POST", "/_fake/faults", {"kind": "outage"})  # a single rule object
    status, body, _ = http(fake.url, "DELETE", "/_fake/faults")
    assert (status, body["rules"]) == (200, [])
    assert body["counters"] == {"status_503": 1}
    client.v1.customers.list()
    status, body, _ = http(fake.url, "GET", "/_fake/faults")
    assert body == {"rules": [], "counters": {"status_503": 1}}


def test_bad_fault_spec_is_a_400(fake: FakeStripe) -> None:
    status, body, _ = http(fake.url, "POST", "/_fake/faults", {"kind": "explode"})
    assert status == 400
    assert "explode" in body["error"]["message"]
    status, _, _ = http(fake.url, "POST", "/_fake/faults", {"kind": "status", "colour": "red"})
    assert status == 400


def test_clock_endpoint(fake: FakeStripe) -> None:
    status, body, _ = http(fake.url, "POST", "/_fake/clock", {"set": 1_700_000_000})
    assert status == 200
    assert 1_700_000_000 <= body["now"] < 1_700_000_100
    _, body, _ = http(fake.url, "POST", "/_fake/clock", {"advance": 3_600})
    assert 1_700_003_600 <= body["now"] < 1_700_003_700
    assert 1_700_003_600 <= fake.clock.now() < 1_700_003_700


def test_unknown_control_url(fake: FakeStripe) -> None:
    status, _, _ = http(fake.url, "GET", "/_fake/nothing")
    assert status == 404
