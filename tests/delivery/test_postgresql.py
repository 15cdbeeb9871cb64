"""Several workers on one PostgreSQL ledger deliver each event exactly once, with Stripe
failing in every way the fake can (threads with their own connections)."""

from __future__ import annotations

import threading
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure
from tests.factories import LicensedMetricFactory, MetricFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("on_postgresql")]


@pytest.fixture(autouse=True)
def fast_retries(configure: Configure) -> None:
    configure(RETRY_BASE_DELAY=0.01, RETRY_MAX_DELAY=0.05, MAX_ATTEMPTS=50, BATCH_SIZE=100)


def add_faults(fake: FakeStripe) -> None:
    fake.faults.seed(7)
    fake.faults.add("status", status=500, rate=0.08)
    fake.faults.add("status", status=429, code="lock_timeout", should_retry=True, rate=0.04)
    fake.faults.add("drop_after_processing", rate=0.08)


def run_workers(count: int) -> None:
    """``count`` threads, each its own worker with its own connection, until all is done."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            while UsageEvent.objects.filter(status=UsageEvent.Status.PENDING).exists() or (
                SubscriptionItemLink.objects.filter(synced_version__lt=1).exists()
            ):
                deliver_pending(max_batches=1)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def record(fake: FakeStripe, metric: Metric, customers: int, events: int) -> list[str]:
    ids = [str(fake.create_customer()["id"]) for _ in range(customers)]
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage(metric, ids[n % customers], n % 5 + 1) for n in range(events)
    )
    return ids


def assert_exactly_once(fake: FakeStripe, metric: Metric, customers: list[str]) -> None:
    assert not UsageEvent.objects.exclude(status=UsageEvent.Status.SENT).exists()
    ledger = Counter[str]()
    for customer, value in UsageEvent.objects.values_list("customer_id", "value"):
        ledger[customer] += value
    assert {c: fake.meter_event_total(metric.event_name, c) for c in customers} == dict(ledger)
    sent = [e["identifier"] for e in fake.meter_events(metric.event_name)]
    assert len(sent) == len(set(sent)) == UsageEvent.objects.count()


@pytest.mark.parametrize(("meter_api", "workers", "events"), [("v1", 2, 300), ("v1", 4, 600)])
def test_v1_workers_deliver_each_event_once_one_call_per_customer(
    fake_stripe: FakeStripe, configure: Configure, meter_api: str, workers: int, events: int
) -> None:
    configure(METER_API=meter_api)
    fake_stripe.create_meter("api_calls")
    metric = MetricFactory(key="api_calls", event_name="api_calls")
    customers = record(fake_stripe, metric, 12, events)
    add_faults(fake_stripe)

    run_workers(workers)

    fake_stripe.faults.clear()
    assert_exactly_once(fake_stripe, metric, customers)
    assert set(fake_stripe.max_concurrency_per_customer_meter.values()) == {1}


def test_four_v2_workers_deliver_5000_events_exactly_once(
    fake_stripe: FakeStripe, configure: Configure
) -> None:
    configure(METER_API="v2")
    fake_stripe.create_meter("api_calls")
    metric = MetricFactory(key="api_calls", event_name="api_calls")
    customers = record(fake_stripe, metric, 40, 5000)
    add_faults(fake_stripe)

    run_workers(4)

    fake_stripe.faults.clear()
    assert_exactly_once(fake_stripe, metric, customers)


def test_the_worker_command_with_four_threads(
    fake_stripe: FakeStripe, configure: Configure
) -> None:
    configure(METER_API="v1")
    fake_stripe.create_meter("api_calls")
    metric = MetricFactory(key="api_calls", event_name="api_calls")
    customers = record(fake_stripe, metric, 8, 200)
    add_faults(fake_stripe)

    while UsageEvent.objects.filter(status=UsageEvent.Status.PENDING).exists():
        call_command("billflow_worker", "--once", "--concurrency", "4", stdout=StringIO())

    fake_stripe.faults.clear()
    assert_exactly_once(fake_stripe, metric, customers)


def test_four_workers_push_each_seat_change_once(
    fake_stripe: FakeStripe, configure: Configure
) -> None:
    configure(METER_API="v1")
    seats = LicensedMetricFactory(key="seats")
    price = fake_stripe.create_price()
    for n in range(30):
        customer = str(fake_stripe.create_customer()["id"])
        subscription = fake_stripe.create_subscription(customer, price["id"], quantity=1)
        SubscriptionItemLink.objects.create(
            customer_id=customer,
            metric=seats,
            stripe_subscription_id=subscription["id"],
            stripe_subscription_item_id=subscription["items"]["data"][0]["id"],
        )
        billflow_usage.set_quantity(seats, customer, n + 2)

    run_workers(4)

    updates = Counter(u["item"] for u in fake_stripe.quantity_updates)
    assert len(updates) == 30
    assert set(updates.values()) == {1}
    assert all(link.quantity_in_sync for link in SubscriptionItemLink.objects.all())
