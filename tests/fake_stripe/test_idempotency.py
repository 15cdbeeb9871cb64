"""Idempotency keys: replay, mismatch and in-flight conflicts."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.testing.fake_stripe.errors import StripeError
from billflow_usage.testing.fake_stripe.idempotency import IdempotencyStore, Reply


def params(customer: str, value: str = "3") -> dict[str, Any]:
    return {"event_name": "api_calls", "payload": {"stripe_customer_id": customer, "value": value}}


@pytest.mark.usefixtures("meter")
def test_same_key_same_params_replays(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    options: Any = {"idempotency_key": "key-1"}
    first = client.v1.billing.meter_events.create(params(customer), options)
    second = client.v1.billing.meter_events.create(params(customer), options)
    assert second.identifier == first.identifier
    assert first.last_response is not None
    assert second.last_response is not None
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert second.last_response.request_id != first.last_response.request_id
    assert fake.meter_event_total("api_calls", customer) == 3
    assert fake.duplicate_identifier_rejections == 0


@pytest.mark.usefixtures("meter")
def test_same_key_different_params_is_an_idempotency_error(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    options: Any = {"idempotency_key": "key-1"}
    client.v1.billing.meter_events.create(params(customer, "3"), options)
    with pytest.raises(stripe.IdempotencyError):
        client.v1.billing.meter_events.create(params(customer, "4"), options)
    assert fake.meter_event_total("api_calls", customer) == 3


@pytest.mark.usefixtures("meter")
def test_v2_idempotency(client: stripe.StripeClient, fake: FakeStripe, customer: str) -> None:
    options: Any = {"idempotency_key": "key-2"}
    client.v2.billing.meter_events.create(params(customer, "3"), options)
    client.v2.billing.meter_events.create(params(customer, "3"), options)
    with pytest.raises(stripe.IdempotencyError):
        client.v2.billing.meter_events.create(params(customer, "4"), options)
    assert fake.meter_event_total("api_calls", customer) == 3


def test_errors_are_replayed_too(client: stripe.StripeClient) -> None:
    options: Any = {"idempotency_key": "key-3"}
    for _ in range(2):
        with pytest.raises(stripe.InvalidRequestError) as exc:
            client.v1.billing.meter_events.create(params("cus_x"), options)
    assert exc.value.headers is not None
    assert exc.value.headers["Idempotent-Replayed"] == "true"


@pytest.mark.usefixtures("meter")
def test_injected_server_errors_are_not_stored(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("status", status=500, times=1)
    options: Any = {"idempotency_key": "key-4"}
    with pytest.raises(stripe.APIError):
        client.v1.billing.meter_events.create(params(customer), options)
    event = client.v1.billing.meter_events.create(params(customer), options)
    assert event.last_response is not None
    assert "Idempotent-Replayed" not in event.last_response.headers
    assert fake.meter_event_total("api_calls", customer) == 3


def test_key_in_flight_is_a_409() -> None:
    store = IdempotencyStore()
    fingerprint = store.fingerprint("POST", "/v1/customers", b"a=1")
    assert store.begin("k", fingerprint) is None
    with pytest.raises(StripeError) as exc:
        store.begin("k", fingerprint)
    assert exc.value.status == 409
    assert exc.value.type == "idempotency_error"
    store.finish("k", Reply(200, b"{}"))
    replay = store.begin("k", fingerprint)
    assert replay is not None
    assert replay.body == b"{}"
