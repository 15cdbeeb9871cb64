"""``billflow_usage.tasks.sync_usage``: ``billflow_sync`` as a Celery beat task, called here
in-process (tests/faults/test_celery_delivery.py runs the tasks in real Celery workers)."""

from __future__ import annotations

import logging

import pytest

import billflow_usage
from billflow_usage import tasks
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import SyncReport, UsageEvent
from tests.clock import Clock
from tests.reconcile.conftest import SETTLED, Account, ago

pytestmark = pytest.mark.django_db


def test_sync_delivers_compares_and_keeps_a_report(account: Account, clock: Clock) -> None:
    customer = account.customer()
    account.subscribe(customer)
    billflow_usage.record_usage("api_calls", customer, 5, timestamp=ago(days=1))

    delivered = tasks.sync_usage()
    clock.advance(SETTLED)
    compared = tasks.sync_usage()

    # What a run delivers, the next run compares (Stripe counts it asynchronously).
    assert account.fake.meter_event_total("api_calls", customer) == 5
    assert (delivered["metered_skipped"], delivered["drift_remaining"]) == (1, 0)
    assert (compared["metered_checked"], compared["metered_in_sync"]) == (1, 1)
    assert compared["drift_remaining"] == 0
    reports = SyncReport.objects.order_by("pk")
    assert [(r.mode, r.status) for r in reports] == [("check", "completed")] * 2


def test_drift_is_logged_and_left_unless_asked_to_apply(
    account: Account, caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    customer = account.customer()
    account.subscribe(customer)
    billflow_usage.record_usage("api_calls", customer, 5, timestamp=ago(days=1))
    deliver_pending()
    clock.advance(SETTLED)
    lost = billflow_usage.record_usage("api_calls", customer, 8, timestamp=ago(days=2))
    UsageEvent.objects.filter(pk=lost.pk).update(status="sent", sent_at=ago(hours=2))

    with caplog.at_level(logging.WARNING, logger="billflow_usage.tasks"):
        checked = tasks.sync_usage()
    repaired = tasks.sync_usage(apply=True)

    assert (checked["metered_drift"], checked["drift_remaining"]) == (1, 1)
    first = SyncReport.objects.earliest("pk").pk
    assert [r.getMessage() for r in caplog.records if r.name == "billflow_usage.tasks"] == [
        f"billflow_sync: 1 drift(s) remain after the run (report #{first}); see it in the admin"
    ]
    assert (repaired["metered_repaired"], repaired["drift_remaining"]) == (1, 0)
    assert account.fake.meter_event_total("api_calls", customer) == 13
