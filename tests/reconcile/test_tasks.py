"""``billflow_usage.tasks.sync_usage``: ``billflow_sync`` as a Celery beat task, called here
in-process (tests/faults/test_celery_delivery.py runs the tasks in real Celery workers)."""

from __future__ import annotations

import logging

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage import tasks
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import SyncReport, UsageEvent
from tests.reconcile.conftest import Account, ago

pytestmark = pytest.mark.django_db


def test_sync_delivers_compares_and_keeps_a_report(account: Account) -> None:
    customer = account.customer()
    account.subscribe(customer)
    billflow_usage.record_usage("api_calls", customer, 5, timestamp=ago(days=1))

    summary = tasks.sync_usage()

    assert (summary["metered_checked"], summary["metered_in_sync"]) == (1, 1)
    assert summary["drift_remaining"] == 0
    assert account.fake.meter_event_total("api_calls", customer) == 5
    report = SyncReport.objects.get()
    assert (report.mode, report.status) == ("check", "completed")


def test_drift_is_logged_and_left_unless_asked_to_apply(
    account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    customer = account.customer()
    account.subscribe(customer)
    billflow_usage.record_usage("api_calls", customer, 5, timestamp=ago(days=1))
    deliver_pending()
    lost = billflow_usage.record_usage("api_calls", customer, 8, timestamp=ago(days=2))
    UsageEvent.objects.filter(pk=lost.pk).update(status="sent", sent_at=timezone.now())

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
