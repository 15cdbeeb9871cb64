"""Stripe keeps a POST's first answer under its idempotency key for 24 hours, 500s included
once the endpoint began executing, and replays it to every retry with that key."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.fake_stripe.helpers import API_KEY, http

pytestmark = pytest.mark.usefixtures("meter")

DAY = 86_400


def send(client: stripe.StripeClient, customer: str, key: str, identifier: str = "e-1") -> Any:
    return client.v1.billing.meter_events.create(
        {
            "event_name": "api_calls",
            "identifier": identifier,
            "payload": {"stripe_customer_id": customer, "value": "3"},
        },
        {"idempotency_key": key},
    )


def replayed_500(client: stripe.StripeClient, customer: str, key: str) -> stripe.APIError:
    with pytest.raises(stripe.APIError) as exc:
        send(client, customer, key)
    assert exc.value.http_status == 500
    return exc.value


def test_a_500_without_effect_is_stored_and_replayed_under_its_key(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("stored_error", route="/v1/billing/meter_events", times=1)

    first = replayed_500(client, customer, "key-1")
    again = replayed_500(client, customer, "key-1")  # the rule fired once: this is the replay

    assert first.headers is not None
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers is not None
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Original-Request"] == first.request_id
    assert fake.meter_event_total("api_calls", customer) == 0  # nothing happened
    send(client, customer, "key-2")  # a new key is a new request
    assert fake.meter_event_total("api_calls", customer) == 3
    assert [r.fault for r in fake.request_log] == ["stored_error_500", None, None]
    assert fake.faults.counters["stored_error_500"] == 1


def test_a_500_after_the_change_took_effect_is_stored_too(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("stored_error_after_effect", status=503, times=1)

    with pytest.raises(stripe.APIError) as exc:
        send(client, customer, "key-1")
    assert exc.value.http_status == 503
    with pytest.raises(stripe.APIError):
        send(client, customer, "key-1")

    assert fake.meter_event_total("api_calls", customer) == 3  # it did happen, once
    with pytest.raises(stripe.InvalidRequestError, match="already exists with identifier"):
        send(client, customer, "key-2")  # the identifier tells a new key's retry


def test_a_stored_answer_is_forgotten_after_24_hours_of_the_fakes_clock(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("stored_error", times=1)
    replayed_500(client, customer, "key-1")
    fake.clock.advance(DAY - 60)
    replayed_500(client, customer, "key-1")

    fake.clock.advance(60)
    event = send(client, customer, "key-1")

    assert event.last_response is not None
    assert "Idempotent-Replayed" not in event.last_response.headers
    assert fake.meter_event_total("api_calls", customer) == 3


def test_faults_before_the_endpoint_and_refused_credentials_leave_nothing_stored(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("status", status=500, times=1)
    fake.faults.add("status", status=429, times=1)
    with pytest.raises(stripe.APIError):
        send(client, customer, "key-1")
    with pytest.raises(stripe.RateLimitError):
        send(client, customer, "key-1")
    fake.keys.revoke(API_KEY)
    with pytest.raises(stripe.AuthenticationError):
        send(client, customer, "key-1")
    fake.keys.restore(API_KEY)

    event = send(client, customer, "key-1")

    assert event.last_response is not None
    assert "Idempotent-Replayed" not in event.last_response.headers


def test_stored_faults_only_store_5xx(fake: FakeStripe) -> None:
    with pytest.raises(ValueError, match="500 to 599"):
        fake.faults.add("stored_error", status=429)
    status, body, _ = http(
        fake.url, "POST", "/_fake/faults", {"kind": "stored_error_after_effect", "times": 2}
    )
    assert status == 200
    assert [(r["kind"], r["status"], r["times"]) for r in body["rules"]] == [
        ("stored_error_after_effect", 500, 2)
    ]
