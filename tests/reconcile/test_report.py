"""The report: a stable, documented JSON schema, the human table, the stored SyncReport,
exit codes and the progress bar."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

import billflow_usage
from billflow_usage.models import SyncReport, UsageEvent
from billflow_usage.reconcile import report as report_module
from tests.reconcile.conftest import Account, ago, sync, sync_json

pytestmark = pytest.mark.django_db

TOP_KEYS = [
    "schema_version",
    "report_id",
    "mode",
    "started_at",
    "finished_at",
    "options",
    "summary",
    "meters",
    "items",
    "delivery",
    "metered",
    "seats",
    "unbilled",
    "failed_events",
    "errors",
    # Added within schema version 1:
    "left_out",
]
SUMMARY_KEYS = [
    "customers",
    "metrics",
    "stripe_requests",
    "meters_created",
    "links_created",
    "links_updated",
    "links_deactivated",
    "metered_checked",
    "metered_in_sync",
    "metered_drift",
    "metered_repaired",
    "metered_skipped",
    "seats_checked",
    "seats_drift",
    "seats_repaired",
    "unbilled",
    "failed_events",
    "errors",
    "drift_remaining",
    # Added within schema version 1 (a reader of version 1 may ignore them):
    "meters_missing",
    "failed_billable",
]
ENTRY_KEYS = {
    "meters": ["metric", "event_name", "meter_id", "action", "applied", "detail"],
    "items": [
        "customer_id",
        "metric",
        "action",
        "subscription_id",
        "subscription_item_id",
        "previous_item_id",
        "detail",
        "applied",
    ],
    "metered": [
        "customer_id",
        "metric",
        "formula",
        "period_start",
        "period_end",
        "ledger",
        "stripe",
        "difference",
        "status",
        "action",
        "applied",
        "detail",
    ],
    "seats": [
        "customer_id",
        "metric",
        "subscription_item_id",
        "recomputed",
        "desired",
        "stripe",
        "status",
        "action",
        "applied",
        "detail",
    ],
    "unbilled": ["customer_id", "metric", "events", "value", "reason"],
    "failed_events": [
        "identifier",
        "customer_id",
        "metric",
        "value",
        "occurred_at",
        "code",
        "message",
        "action",
        "detail",
    ],
    "errors": ["step", "customer_id", "metric", "code", "message"],
}


def drifting_account(account: Account) -> str:
    customer = account.customer()
    account.subscribe(customer)
    lost = billflow_usage.record_usage("api_calls", customer, 5, timestamp=ago(days=1))
    UsageEvent.objects.filter(pk=lost.pk).update(status="sent", sent_at=ago(hours=2))
    return customer


def test_json_schema_is_stable(account: Account) -> None:
    drifting_account(account)
    billflow_usage.record_usage("api_calls", account.customer(), 1, timestamp=ago(hours=3))
    account.subscribe(account.customer(), price=account.seat_price, quantity=1)

    document = sync_json("--create-meters")

    assert list(document) == TOP_KEYS
    assert document["schema_version"] == report_module.SCHEMA_VERSION == 1
    assert list(document["summary"]) == SUMMARY_KEYS
    assert list(document["options"]) == [
        "metrics",
        "customers",
        "since",
        "until",
        "settling_window",
        "create_meters",
        "items_from",
    ]
    assert document["metered"]
    assert document["unbilled"]
    assert document["items"]
    for section, keys in ENTRY_KEYS.items():
        assert report_module.dataclass_keys(_entry_class(section)) == keys
        for entry in document[section]:
            assert list(entry) == keys, section
    # The module docstring documents every key.
    for key in [*TOP_KEYS, *SUMMARY_KEYS, *(k for keys in ENTRY_KEYS.values() for k in keys)]:
        assert key in (report_module.__doc__ or "") or key in SUMMARY_KEYS, key


def _entry_class(section: str) -> type:
    return {
        "meters": report_module.MeterEntry,
        "items": report_module.ItemChange,
        "metered": report_module.MeteredEntry,
        "seats": report_module.SeatEntry,
        "unbilled": report_module.UnbilledEntry,
        "failed_events": report_module.FailedEvent,
        "errors": report_module.ErrorEntry,
    }[section]


def test_every_run_is_stored(account: Account) -> None:
    drifting_account(account)
    before = account.fake.request_count()

    document = sync_json("--apply")

    # Every request went through the run's rate-limited backend, and was counted.
    assert document["summary"]["stripe_requests"] == account.fake.request_count() - before
    row = SyncReport.objects.get(pk=document["report_id"])
    assert (row.mode, row.status) == (SyncReport.Mode.APPLY, SyncReport.Status.COMPLETED)
    assert row.finished_at is not None
    assert row.finished_at >= row.started_at
    assert row.report == document
    assert row.summary == document["summary"]
    assert row.options["settling_window"] == 3600
    assert [c["kind"] for c in row.changes] == ["item", "metered"]
    assert row.drift_remaining == 0


def test_human_table(account: Account) -> None:
    customer = drifting_account(account)

    out, code = sync()

    assert code == 0
    assert "Metered usage: 1 checked, 0 in sync, 1 drift (0 repaired)" in out
    assert customer in out
    assert "missing_in_stripe" in out
    assert "Drift remaining: 1" in out
    assert "\r" not in out  # no progress bar when piped


def test_progress_bar_on_a_terminal(account: Account) -> None:
    drifting_account(account)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    call_command("billflow_sync", stdout=out)
    assert "\rmetered   [" in out.getvalue()


def test_fail_on_drift_exit_codes(account: Account) -> None:
    drifting_account(account)

    with pytest.raises(CommandError) as failed:
        call_command("billflow_sync", "--fail-on-drift", stdout=io.StringIO())
    assert failed.value.returncode == 3

    call_command("billflow_sync", "--apply", "--fail-on-drift", stdout=io.StringIO())
    call_command("billflow_sync", "--fail-on-drift", stdout=io.StringIO())  # in sync now


def test_stripe_errors_are_reported_without_secrets(account: Account) -> None:
    drifting_account(account)
    account.fake.faults.add(
        "status", status=500, route="/v1/billing/meters/*/event_summaries", times=5
    )

    with pytest.raises(CommandError) as failed:
        call_command("billflow_sync", "--json", "--fail-on-drift", stdout=(out := io.StringIO()))

    assert failed.value.returncode == 4
    document = json.loads(out.getvalue())
    assert document["summary"]["errors"] == 1
    assert document["metered"][0]["status"] == "error"
    assert "sk_test_billflow_fake" not in out.getvalue()
    assert "billflow_fake" not in json.dumps(SyncReport.objects.get().report)


def test_bad_options_are_command_errors(account: Account) -> None:
    with pytest.raises(CommandError, match="No active metric"):
        call_command("billflow_sync", "--metric", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("billflow_sync", "--customer", "acme", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--until must be after"):
        call_command(
            "billflow_sync",
            "--since",
            "2026-02-01",
            "--until",
            "2026-01-01",
            stdout=io.StringIO(),
        )
