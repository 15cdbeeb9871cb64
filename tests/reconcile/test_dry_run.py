"""--dry-run reads only: no ledger row, no link change, no Stripe write."""

from __future__ import annotations

import pytest
import stripe

import billflow_usage
from billflow_usage.models import Metric, SubscriptionItemLink, SyncReport, UsageEvent
from tests.factories import MetricFactory
from tests.reconcile.conftest import Account, ago, sync_json

pytestmark = pytest.mark.django_db


def snapshot() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], list[str]]:
    events = list(UsageEvent.objects.order_by("pk").values_list())
    links = list(SubscriptionItemLink.objects.order_by("pk").values_list())
    meters = list(Metric.objects.order_by("pk").values_list("stripe_meter_id", flat=True))
    return events, links, meters


def test_dry_run_changes_nothing(account: Account, client: stripe.StripeClient) -> None:
    # Every kind of drift at once.
    missing, surplus, canceled = account.customer(), account.customer(), account.customer()
    account.subscribe(missing)
    account.subscribe(surplus)
    old = account.subscribe(canceled)
    sync_json()  # links for all three
    client.v1.subscriptions.cancel(old["id"])
    account.subscribe(account.customer(), price=account.seat_price, quantity=2)  # new
    lost = billflow_usage.record_usage("api_calls", missing, 5, timestamp=ago(days=1))
    UsageEvent.objects.filter(pk=lost.pk).update(status="sent", sent_at=ago(hours=2))
    billflow_usage.record_usage("api_calls", missing, 2, timestamp=ago(days=1))  # pending
    client.v1.billing.meter_events.create(
        {
            "event_name": "api_calls",
            "payload": {"stripe_customer_id": surplus, "value": "4"},
            "timestamp": int(ago(days=1).timestamp()),
        }
    )
    MetricFactory(key="uploads", event_name="uploads")  # no meter yet
    before = snapshot()
    posts = account.fake.request_count(method="POST")

    document = sync_json("--dry-run", "--create-meters")

    assert snapshot() == before
    assert account.fake.request_count(method="POST") == posts
    assert document["mode"] == "dry_run"
    assert document["delivery"] is None
    assert {(i["action"], i["applied"]) for i in document["items"]} == {
        ("deactivated", False),
        ("created", False),
    }
    drift = {e["customer_id"]: e for e in document["metered"] if e["status"] != "skipped"}
    assert drift[missing]["action"] == "correct"
    assert drift[surplus]["action"] == "offset"
    assert not any(e["applied"] for e in document["metered"])
    assert SyncReport.objects.get(pk=document["report_id"]).changes == []
