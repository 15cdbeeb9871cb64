"""Unbilled usage (no active item for the metric) and permanently failed events."""

from __future__ import annotations

import pytest

import billflow_usage
from billflow_usage.delivery import deliver_pending
from tests.clock import Clock
from tests.factories import MetricFactory, UsageEventFactory
from tests.reconcile.conftest import SETTLED, Account, ago, sync, sync_exit, sync_json

pytestmark = pytest.mark.django_db


def test_usage_without_an_item_is_listed_with_the_reason(account: Account) -> None:
    subscribed, unsubscribed = account.customer(), account.customer()
    account.subscribe(subscribed)
    for customer in (subscribed, unsubscribed):
        billflow_usage.record_usage("api_calls", customer, 3, timestamp=ago(hours=3))
        billflow_usage.record_usage("api_calls", customer, 4, timestamp=ago(hours=4))
    MetricFactory(key="exports", event_name="exports")
    billflow_usage.record_usage("exports", subscribed, 1, timestamp=ago(hours=3))

    document = sync_json()

    unbilled = {(u["customer_id"], u["metric"]): u for u in document["unbilled"]}
    assert set(unbilled) == {(unsubscribed, "api_calls"), (subscribed, "exports")}
    entry = unbilled[(unsubscribed, "api_calls")]
    assert (entry["events"], entry["value"]) == (2, 7)
    assert "no active subscription item" in entry["reason"]
    assert (
        "neither stripe_price_id nor stripe_meter_id" in unbilled[(subscribed, "exports")]["reason"]
    )
    # Two unbilled pairs, and exports has no meter in Stripe either.
    assert (document["summary"]["meters_missing"], document["summary"]["drift_remaining"]) == (
        1,
        3,
    )


def test_failed_events_are_listed_with_stripes_code(account: Account) -> None:
    customer = account.customer()
    account.subscribe(customer)
    unknown = "cus_NotInStripe"
    event = billflow_usage.record_usage("api_calls", unknown, 2, timestamp=ago(hours=3))
    deliver_pending()

    document = sync_json()

    [failed] = document["failed_events"]
    assert (failed["identifier"], failed["customer_id"], failed["value"]) == (
        event.identifier,
        unknown,
        2,
    )
    assert failed["code"] == "meter_event_customer_not_found"
    assert "No such customer" in failed["message"]
    # Not billable: the customer has no subscription item, so it is unbilled usage instead.
    assert (failed["action"], document["summary"]["failed_billable"]) == ("none", 0)
    assert "see unbilled usage" in failed["detail"]
    assert (document["summary"]["failed_events"], document["summary"]["unbilled"]) == (1, 1)


def test_usage_failed_for_good_for_a_subscribed_customer_is_drift(
    account: Account, clock: Clock
) -> None:
    """Stripe refused the row for good: nothing bills it until someone retries it."""
    customer = account.customer()
    account.subscribe(customer)
    billflow_usage.record_usage("api_calls", customer, 5, timestamp=ago(hours=3))
    event = billflow_usage.record_usage("api_calls", customer, 4)
    account.fake.clock.advance(-3600)  # Stripe's clock behind ours: "timestamp in future"
    try:
        deliver_pending()
    finally:
        account.fake.clock.reset()
    clock.advance(SETTLED)

    document, code = sync_exit()

    assert code == 3
    summary = document["summary"]
    assert (summary["failed_events"], summary["failed_billable"]) == (1, 1)
    assert (summary["metered_in_sync"], summary["drift_remaining"]) == (1, 1)
    [failed] = document["failed_events"]
    assert (failed["identifier"], failed["code"], failed["action"]) == (
        event.identifier,
        "timestamp_in_future",
        "retry",
    )
    assert "timestamp_in_future" in failed["detail"]
    assert "retry it from the admin" in failed["detail"]
    out, _ = sync()
    assert "1 of them billable: fix the cause, then retry them from the admin" in out


def test_a_metered_metric_without_a_meter_is_drift_until_created(account: Account) -> None:
    MetricFactory(key="exports", event_name="exports")

    document, code = sync_exit()

    assert (code, document["summary"]["drift_remaining"]) == (3, 1)
    assert document["summary"]["meters_missing"] == 1
    [meter] = document["meters"]
    assert (meter["metric"], meter["meter_id"], meter["action"]) == ("exports", "", "missing")
    assert "--create-meters" in meter["detail"]
    out, _ = sync()
    assert "run billflow_sync --create-meters" in out
    assert sync_exit("--dry-run", "--create-meters")[1] == 3  # nothing created yet

    created, code = sync_exit("--create-meters")
    assert (code, created["meters"][0]["action"], created["summary"]["meters_missing"]) == (
        0,
        "created",
        0,
    )
    assert sync_exit()[1] == 0


def test_failed_usage_too_old_for_stripe_says_to_record_it_again(account: Account) -> None:
    customer = account.customer()
    account.subscribe(customer)
    billflow_usage.record_usage("api_calls", customer, 3, timestamp=ago(days=40))

    document, code = sync_exit("--since", ago(days=45).date().isoformat())

    [failed] = document["failed_events"]
    assert (code, failed["code"], failed["action"]) == (
        3,
        "timestamp_too_far_in_past",
        "record_again",
    )
    assert "record the usage again" in failed["detail"]


def test_a_tracker_row_kept_without_a_metric_is_listed(account: Account) -> None:
    """Its tracker's metric doesn't exist: the usage is in the ledger, and in the report."""
    account.subscribe(account.customer())
    UsageEventFactory(unknown_metric=True, occurred_at=ago(hours=3))

    [failed] = sync_json()["failed_events"]

    assert (failed["metric"], failed["code"]) == ("", "unknown_metric")
