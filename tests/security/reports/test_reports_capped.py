"""A SyncReport keeps at most MAX_STORED_ENTRIES entries per list and MAX_STORED_TEXT
characters per text (those that need someone first); ``summary`` keeps the full counts and
``left_out`` says how many entries were dropped. ``--json`` still prints the whole run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import billflow_usage
from billflow_usage.models import SyncReport, UsageEvent
from billflow_usage.reconcile import report as report_module
from billflow_usage.reconcile.report import MeteredEntry, Report, for_storage
from tests.reconcile.conftest import Account, ago, sync_json

pytestmark = pytest.mark.django_db

CAP = report_module.MAX_STORED_ENTRIES
TEXT_CAP = report_module.MAX_STORED_TEXT


def test_a_stored_report_is_capped_per_list_and_counts_what_it_left_out(account: Account):
    customers = [f"cus_Unbilled{n:05d}" for n in range(CAP + 37)]
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, 1, timestamp=ago(hours=2))
        for customer in customers
    )
    failed = UsageEvent.objects.filter(customer_id=customers[0])
    failed.update(status=UsageEvent.Status.FAILED, last_error_message="x" * 50_000)

    # dj-stripe's rows only (none here): no Stripe read per customer, all usage unbilled.
    printed = sync_json("--dry-run", "--items-from", "djstripe")

    assert len(printed["unbilled"]) == CAP + 37  # --json prints the whole run
    assert len(printed["failed_events"][0]["message"]) == 50_000
    assert printed["left_out"] == {}
    stored = SyncReport.objects.get(pk=printed["report_id"])
    assert len(stored.report["unbilled"]) == CAP
    assert stored.report["left_out"] == {"unbilled": 37}
    assert stored.summary["unbilled"] == stored.report["summary"]["unbilled"] == CAP + 37
    assert stored.drift_remaining == printed["summary"]["drift_remaining"]
    assert len(stored.report["failed_events"][0]["message"]) == TEXT_CAP
    assert len(str(stored.report)) < 400 * CAP


def _entry(n: int, status: str, *, applied: bool = False) -> MeteredEntry:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return MeteredEntry(
        f"cus_{n:06d}",
        "api_calls",
        "sum",
        at,
        at,
        1,
        0,
        -1,
        status,
        "none",
        applied,
        "d" * (TEXT_CAP * 3),
    )


def test_entries_that_need_someone_are_kept_first():
    report = Report(mode="check", started_at=datetime(2026, 11, 1, tzinfo=UTC), options={})
    report.metered = [_entry(n, "skipped") for n in range(CAP)]
    report.metered += [_entry(CAP + n, "mismatch", applied=n % 2 == 0) for n in range(40)]
    report.metered += [_entry(2 * CAP + n, "error") for n in range(10)]
    report.errors = [report_module.ErrorEntry("metered", "cus_1", "m", "x", "y")] * (CAP + 1)

    stored, changes = for_storage(report.as_json(), report.changes())

    kept = stored["metered"]
    assert len(kept) == CAP
    # Unrepaired drift and errors first, then the repaired drift, then the rest.
    assert [(e["status"], e["applied"]) for e in kept[:50]] == (
        [("mismatch", False)] * 20 + [("error", False)] * 10 + [("mismatch", True)] * 20
    )
    assert {e["customer_id"] for e in kept} >= {f"cus_{CAP + n:06d}" for n in range(40)}
    assert stored["left_out"] == {"metered": 50, "errors": 1}
    assert stored["summary"]["metered_drift"] == 40
    assert all(len(e["detail"]) == TEXT_CAP for e in kept)
    assert len(changes) == 20  # the repaired ones, under the cap


def test_the_changes_list_is_capped_too():
    report = Report(mode="apply", started_at=datetime(2026, 11, 1, tzinfo=UTC), options={})
    report.metered = [_entry(n, "mismatch", applied=True) for n in range(CAP + 5)]

    stored, changes = for_storage(report.as_json(), report.changes())

    assert len(changes) == CAP
    assert stored["left_out"] == {"metered": 5, "changes": 5}


def test_failed_events_beyond_the_listed_newest_are_counted_as_left_out():
    report = Report(mode="check", started_at=datetime(2026, 11, 1, tzinfo=UTC), options={})
    report.count("failed_events", 1234)
    report.failed_events = [
        report_module.FailedEvent("id", "cus_1", "m", 1, report.started_at, "c", "m")
    ] * 3

    assert report.as_json()["left_out"] == {"failed_events": 1231}
