"""Many customers: at most one meter event summaries request per customer and metric.

Fixtures are built fast: customers and subscriptions directly in the fake, Stripe's events
through the v2 stream (100 a request), the ledger with ``bulk_create``.
"""

from __future__ import annotations

import time
import uuid

import pytest

from billflow_usage.backends.base import MeterEvent
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from tests.factories import MetricFactory, UsageEventFactory
from tests.reconcile.conftest import PERIOD_AGE, ago, sync_json

pytestmark = pytest.mark.django_db


def build(fake: FakeStripe, customers: int) -> tuple[list[str], list[Metric]]:
    metrics, prices = [], []
    for key in ("api_calls", "exports"):
        meter = fake.create_meter(key, formula="sum")
        prices.append(fake.create_price(meter=meter["id"])["id"])
        metrics.append(MetricFactory(key=key, event_name=key, stripe_meter_id=meter["id"]))
    ids = []
    fake.clock.set(time.time() - PERIOD_AGE.total_seconds())
    try:
        for _ in range(customers):
            customer = str(fake.create_customer()["id"])
            ids.append(customer)
            for price in prices:
                fake.create_subscription(customer, price)
    finally:
        fake.clock.reset()
    rows, events = [], []
    for index, customer in enumerate(ids):
        for metric in metrics:
            identifier = f"bfu_{uuid.uuid4().hex}"
            value = 1 + index % 7
            at = ago(days=1, seconds=index)
            rows.append(
                UsageEventFactory.build(
                    metric=metric,
                    customer_id=customer,
                    value=value,
                    occurred_at=at,
                    identifier=identifier,
                    sent=True,
                    sent_at=at,  # long settled: Stripe counts it
                )
            )
            events.append(MeterEvent(identifier, metric.key, customer, value, at))
    UsageEvent.objects.bulk_create(rows, batch_size=1000)
    backend = StripeBackend(api_key=FAKE_STRIPE_API_KEY, api_base=fake.url, meter_api="v2")
    try:
        backend.send_meter_events(events[2:])  # the first customer's 2 events never arrived
    finally:
        backend.close()
    return ids, metrics


def check(fake: FakeStripe, customers: int) -> None:
    ids, _ = build(fake, customers)
    before = fake.request_count("/v1/billing/meters/")

    document = sync_json("--apply")

    summaries = fake.request_count("/v1/billing/meters/") - before
    assert summaries == customers * 2  # exactly one per customer and metric
    summary = document["summary"]
    assert summary["customers"] == customers
    assert summary["links_created"] == customers * 2
    assert summary["metered_checked"] == customers * 2
    assert summary["metered_in_sync"] == customers * 2 - 2
    assert summary["metered_repaired"] == 2
    assert summary["drift_remaining"] == 0
    assert {e["customer_id"] for e in document["metered"]} == {ids[0]}
    # Subscriptions are listed 100 a page, not once per customer.
    assert fake.request_count("/v1/subscriptions", "GET") == -(-customers * 2 // 100)
    assert SubscriptionItemLink.objects.filter(active=True).count() == customers * 2


def test_200_customers_x_2_metrics(fake_stripe: FakeStripe, configure: object) -> None:
    check(fake_stripe, 200)


@pytest.mark.slow
def test_2000_customers_x_2_metrics(fake_stripe: FakeStripe, configure: object) -> None:
    check(fake_stripe, 2000)
