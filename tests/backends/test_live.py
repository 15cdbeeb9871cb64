"""The same backend and engine against Stripe's test mode.

Runs only when ``STRIPE_TEST_SECRET_KEY`` is set in the environment (a test-mode key); it
creates a meter and a customer with unique names and removes them afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from django.utils import timezone

import billflow_usage
from billflow_usage.backends.base import Cancellation, MeterEvent, Outcome
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent

KEY = os.environ.get("STRIPE_TEST_SECRET_KEY", "")

pytestmark = pytest.mark.skipif(
    not KEY.startswith(("sk_test_", "rk_test_")),
    reason="set STRIPE_TEST_SECRET_KEY to a test-mode key to run against Stripe's test mode",
)


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, str]]:
    """A fresh meter and customer in test mode, removed afterwards."""
    client = stripe.StripeClient(KEY, max_network_retries=2)
    event_name = f"bfu_live_{uuid.uuid4().hex[:12]}"
    meter = client.v1.billing.meters.create(
        {
            "display_name": f"billflow_usage live test {event_name}",
            "event_name": event_name,
            "default_aggregation": {"formula": "sum"},
        }
    )
    customer = client.v1.customers.create({"description": "billflow_usage live test"})
    try:
        yield {"event_name": event_name, "customer": customer.id}
    finally:
        client.v1.customers.delete(customer.id)
        client.v1.billing.meters.deactivate(meter.id)


def meter_event(live: dict[str, str], identifier: str, attempt: int = 0) -> MeterEvent:
    return MeterEvent(
        identifier=identifier,
        event_name=live["event_name"],
        customer_id=live["customer"],
        value=2,
        timestamp=timezone.now(),
        attempt=attempt,
    )


def test_v1_delivers_and_a_repeat_counts_as_delivered(live: dict[str, str]) -> None:
    backend = StripeBackend(api_key=KEY, api_base=None, meter_api="v1")
    identifier = f"live-{uuid.uuid4().hex}"

    [first] = backend.send_meter_events([meter_event(live, identifier)])
    [again] = backend.send_meter_events([meter_event(live, identifier, attempt=1)])
    cancel = backend.cancel_meter_event(Cancellation(live["event_name"], identifier))

    assert first.outcome == Outcome.DELIVERED, first.message
    assert again.outcome == Outcome.DELIVERED, again.message
    assert cancel.outcome == Outcome.DELIVERED, cancel.message
    backend.close()


def test_v2_stream_accepts_a_batch(live: dict[str, str]) -> None:
    backend = StripeBackend(api_key=KEY, api_base=None, meter_api="v2")
    events = [meter_event(live, f"live-v2-{uuid.uuid4().hex}") for _ in range(3)]

    results = backend.send_meter_events(events)

    assert {r.outcome for r in results} == {Outcome.DELIVERED}, results
    backend.close()


@pytest.mark.django_db
def test_the_engine_delivers_a_ledger_row(live: dict[str, str], settings: Any) -> None:
    settings.BILLFLOW_USAGE = {
        "BACKEND": "billflow_usage.backends.stripe.StripeBackend",
        "STRIPE_API_KEY": KEY,
        "METER_API": "v1",
        "DELIVERY": "worker",
    }
    Metric.objects.create(key="live", event_name=live["event_name"])
    billflow_usage.record_usage("live", live["customer"], 3)

    assert deliver_pending().delivered == 1
    assert UsageEvent.objects.get().status == UsageEvent.Status.SENT
