"""Unbilled usage (no active item for the metric) and permanently failed events."""

from __future__ import annotations

import pytest

import billflow_usage
from billflow_usage.delivery import deliver_pending
from tests.factories import MetricFactory, UsageEventFactory
from tests.reconcile.conftest import Account, ago, sync_json

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
    assert document["summary"]["drift_remaining"] == 2


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
    assert document["summary"]["failed_events"] == 1


def test_a_tracker_row_kept_without_a_metric_is_listed(account: Account) -> None:
    """Its tracker's metric doesn't exist: the usage is in the ledger, and in the report."""
    account.subscribe(account.customer())
    UsageEventFactory(
        metric=None,
        status="failed",
        occurred_at=ago(hours=3),
        last_error_code="unknown_metric",
        last_error_message="No metric with key 'api-cals'",
    )

    [failed] = sync_json()["failed_events"]

    assert (failed["metric"], failed["code"]) == ("", "unknown_metric")
