"""usage_threshold_crossed: once per threshold, customer, metric and period, after commit."""

import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.db import connections, transaction

import billflow_usage
from billflow_usage.models import UsageThresholdCrossing
from billflow_usage.signals import usage_threshold_crossed
from billflow_usage.tracking.registry import TrackerRegistry
from billflow_usage.usage_limits.checking import check_limit
from billflow_usage.usage_limits.crossings import record_crossings
from tests.factories import OrderFactory, UsageLimitFactory, WorkspaceFactory
from tests.limits.conftest import CUSTOMER
from tests.testapp.models import Order

# The figures below are of the billing period around the suite's usual instant (tests/clock.py).
pytestmark = [pytest.mark.django_db, pytest.mark.now("2026-06-15T12:00:00Z")]


@pytest.fixture
def crossings():
    received: list[dict] = []

    def receiver(sender, **kwargs):
        kwargs.pop("signal")
        received.append(kwargs)

    usage_threshold_crossed.connect(receiver, dispatch_uid="test-crossings")
    yield received
    usage_threshold_crossed.disconnect(dispatch_uid="test-crossings")


def test_enforced_usage_announces_each_threshold_once_after_commit(
    api_calls, crossings, django_capture_on_commit_callbacks
) -> None:
    UsageLimitFactory(metric=api_calls, limit=10, thresholds=[50, 80, 100])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        billflow_usage.record_usage(api_calls, CUSTOMER, 8, enforce_limit=True)
        assert crossings == []  # not before the commit
    assert len(callbacks) >= 2
    assert [(c["threshold"], c["used"], c["limit"]) for c in crossings] == [
        (50, 8, 10),
        (80, 8, 10),
    ]
    assert crossings[0]["metric"] == "api-calls"
    assert crossings[0]["customer_id"] == CUSTOMER
    assert crossings[0]["period_start"] == datetime(2026, 6, 1, tzinfo=UTC)
    crossings.clear()
    with django_capture_on_commit_callbacks(execute=True):
        billflow_usage.record_usage(api_calls, CUSTOMER, 1, enforce_limit=True)
        billflow_usage.record_usage(api_calls, CUSTOMER, 1, enforce_limit=True)
    assert [c["threshold"] for c in crossings] == [100]


def test_a_rolled_back_crossing_is_not_announced_nor_kept(api_calls, crossings) -> None:
    UsageLimitFactory(metric=api_calls, limit=10)
    with transaction.atomic():
        billflow_usage.record_usage(api_calls, CUSTOMER, 9, enforce_limit=True)
        transaction.set_rollback(True)
    assert crossings == []
    assert not UsageThresholdCrossing.objects.exists()


def test_a_tracker_driven_crossing_is_announced_by_the_folding_step(
    api_calls, crossings, fold, django_capture_on_commit_callbacks
) -> None:
    """Trackers record without a check (the hot path); the fold notices the crossing."""
    workspace = WorkspaceFactory(stripe_customer_id=CUSTOMER)
    UsageLimitFactory(metric=api_calls, limit=4, soft=True)
    registry = TrackerRegistry()
    registry.track(Order, metric="api-calls", customer=lambda order: CUSTOMER)
    try:
        OrderFactory.create_batch(4, workspace=workspace)
    finally:
        registry.clear()
    assert crossings == []
    with django_capture_on_commit_callbacks(execute=True):
        fold()
    assert [(c["threshold"], c["used"]) for c in crossings] == [(80, 4), (100, 4)]
    crossings.clear()
    billflow_usage.record_usage(api_calls, CUSTOMER, 3)
    with django_capture_on_commit_callbacks(execute=True):
        fold()
    assert crossings == []  # stored: never twice in a period
    assert UsageThresholdCrossing.objects.count() == 2


def test_the_worker_folds_and_announces(
    api_calls, crossings, django_capture_on_commit_callbacks
) -> None:
    UsageLimitFactory(metric=api_calls, limit=2)
    billflow_usage.record_usage_bulk([billflow_usage.Usage(api_calls, CUSTOMER, 2)])
    with django_capture_on_commit_callbacks(execute=True):
        call_command("billflow_worker", "--once", verbosity=0)
    assert [c["threshold"] for c in crossings] == [80, 100]


@pytest.mark.now("2026-06-30T23:59:00Z")
def test_a_new_period_announces_afresh(
    api_calls, crossings, django_capture_on_commit_callbacks
) -> None:
    UsageLimitFactory(metric=api_calls, limit=1, thresholds=[100])
    with django_capture_on_commit_callbacks(execute=True):
        billflow_usage.record_usage(api_calls, CUSTOMER, 1, enforce_limit=True)
    with (
        time_machine.travel(datetime(2026, 7, 1, 0, 0, 1, tzinfo=UTC)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        billflow_usage.record_usage(api_calls, CUSTOMER, 1, enforce_limit=True)
    assert [c["period_start"].month for c in crossings] == [6, 7]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("on_postgresql")
def test_two_processes_noticing_the_same_crossing_announce_it_once(api_calls, crossings) -> None:
    """Both see no stored crossing and insert; the second waits for the first's commit and
    finds the row taken."""
    UsageLimitFactory(metric=api_calls, limit=1, thresholds=[100])
    billflow_usage.record_usage(api_calls, CUSTOMER, 1)
    both_inside = threading.Barrier(2, timeout=10)

    def notice() -> None:
        try:
            with transaction.atomic():
                status = check_limit(api_calls, CUSTOMER, value=0)
                both_inside.wait()
                record_crossings(api_calls, status, using="default")
                threading.Event().wait(0.2)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=notice) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [c["threshold"] for c in crossings] == [100]
    assert UsageThresholdCrossing.objects.count() == 1
