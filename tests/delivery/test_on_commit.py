"""How delivery starts: after commit in-process (on_commit), a Celery task, or not at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction

import billflow_usage
from billflow_usage import tasks
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure
from tests.factories import LicensedMetricFactory

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def failing_order(customer: str, value: int) -> None:
    """Record usage in a transaction that then fails and rolls back."""
    with transaction.atomic():
        billflow_usage.record_usage("api_calls", customer, value)
        raise RuntimeError("the order failed")


@pytest.fixture(autouse=True)
def on_commit(configure: Configure) -> None:
    configure(METER_API="v1", DELIVERY="on_commit")


def test_delivery_runs_once_after_commit(
    fake_stripe: FakeStripe,
    api_calls: Metric,
    customer: str,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        billflow_usage.record_usage("api_calls", customer, 1)
        billflow_usage.record_usage("api_calls", customer, 2)
        billflow_usage.record_usage_bulk(
            billflow_usage.Usage("api_calls", customer, 3) for _ in range(2)
        )
        assert fake_stripe.request_count() == 0  # nothing inside the transaction

    assert len(callbacks) == 1
    assert fake_stripe.meter_event_total("api_calls", customer) == 9
    assert set(UsageEvent.objects.values_list("status", flat=True)) == {"sent"}


def test_nothing_is_sent_for_a_rolled_back_transaction(
    fake_stripe: FakeStripe,
    api_calls: Metric,
    customer: str,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            failing_order(customer, 1)
        billflow_usage.set_quantity(LicensedMetricFactory(key="seats"), customer, 3)

    assert len(callbacks) == 1  # the later write in the same transaction schedules anew
    assert fake_stripe.request_count("/v1/billing/meter_events") == 0
    assert not UsageEvent.objects.exists()


def test_failures_stay_pending_and_never_reach_the_caller(
    fake_stripe: FakeStripe,
    api_calls: Metric,
    customer: str,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    fake_stripe.faults.add("outage")
    with django_capture_on_commit_callbacks(execute=True):
        event = billflow_usage.record_usage("api_calls", customer, 1)

    event.refresh_from_db()
    assert (event.status, event.attempts) == ("pending", 1)
    assert event.last_error_code == "api_connection_error"


def test_a_slow_stripe_is_cut_short_by_on_commit_timeout(
    fake_stripe: FakeStripe,
    api_calls: Metric,
    customer: str,
    configure: Configure,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    configure(ON_COMMIT_TIMEOUT=0.05)
    fake_stripe.faults.add("latency", latency=5.0)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            event = billflow_usage.record_usage("api_calls", customer, 1)
    finally:
        fake_stripe.faults.clear()

    event.refresh_from_db()
    assert event.status == "pending"
    assert event.last_error_code == "api_connection_error"


def test_only_what_the_transaction_recorded_is_tried(
    fake_stripe: FakeStripe,
    api_calls: Metric,
    customer: str,
    configure: Configure,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    configure(DELIVERY="worker")
    backlog = billflow_usage.record_usage("api_calls", customer, 100)
    configure(DELIVERY="on_commit")
    with django_capture_on_commit_callbacks(execute=True):
        billflow_usage.record_usage("api_calls", customer, 1)

    assert fake_stripe.meter_event_total("api_calls", customer) == 1
    backlog.refresh_from_db()
    assert backlog.status == "pending"


def test_a_seat_change_is_pushed_after_commit(
    fake_stripe: FakeStripe, customer: str, django_capture_on_commit_callbacks: Capture
) -> None:
    price = fake_stripe.create_price()
    subscription = fake_stripe.create_subscription(customer, price["id"], quantity=1)
    item = subscription["items"]["data"][0]["id"]
    seats = LicensedMetricFactory(key="seats")
    SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=seats,
        stripe_subscription_id=subscription["id"],
        stripe_subscription_item_id=item,
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for quantity in (2, 3, 4):
            billflow_usage.set_quantity(seats, customer, quantity)

    assert len(callbacks) == 1
    assert [u["quantity"] for u in fake_stripe.quantity_updates] == [4]


def test_worker_mode_schedules_nothing(
    api_calls: Metric,
    customer: str,
    configure: Configure,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    configure(DELIVERY="worker")
    with django_capture_on_commit_callbacks() as callbacks:
        billflow_usage.record_usage("api_calls", customer, 1)

    assert callbacks == []


def test_celery_mode_enqueues_the_task_once_after_commit(
    api_calls: Metric,
    customer: str,
    configure: Configure,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    configure(DELIVERY="celery")
    enqueued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.deliver_usage, "delay", lambda *args: enqueued.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        billflow_usage.record_usage("api_calls", customer, 1)
        billflow_usage.record_usage("api_calls", customer, 2)
        assert enqueued == []

    assert enqueued == [()]


def test_the_celery_task_delivers_what_is_due(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    billflow_usage.record_usage("api_calls", customer, 5)

    counts = tasks.deliver_usage()

    assert counts["delivered"] == 1
    assert fake_stripe.meter_event_total("api_calls", customer) == 5


@pytest.mark.django_db(transaction=True)
def test_a_real_commit_delivers_and_a_real_rollback_does_not(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    with transaction.atomic():
        billflow_usage.record_usage("api_calls", customer, 2)
        assert fake_stripe.request_count() == 0
    with pytest.raises(RuntimeError):
        failing_order(customer, 50)

    assert fake_stripe.meter_event_total("api_calls", customer) == 2
    assert list(UsageEvent.objects.values_list("status", flat=True)) == ["sent"]
