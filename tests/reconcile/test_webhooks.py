"""Between runs: dj-stripe's subscription webhooks keep links fresh, and meter error reports
mark the named events failed."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from djstripe.signals import WEBHOOK_SIGNALS

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import SubscriptionItemLink, UsageEvent
from billflow_usage.webhooks import mark_meter_errors
from tests.reconcile.backends import EventsBackend
from tests.reconcile.conftest import Account, ago, before_links_are_written

pytestmark = pytest.mark.django_db

SECRET = "whsec_billflowtests"


def send(name: str, subscription: dict[str, Any]) -> None:
    # dj-stripe sends with sender=Event; another sender keeps dj-stripe's own handler (which
    # would call Stripe to sync its models) out of this test.
    event = SimpleNamespace(data={"object": subscription})
    WEBHOOK_SIGNALS[name].send(sender=None, event=event)


def test_subscription_webhooks_create_update_and_deactivate_links(account: Account) -> None:
    customer = account.customer()
    sub = account.subscribe(customer, price=account.seat_price, quantity=2)
    item = sub["items"]["data"][0]

    send("customer.subscription.created", sub)
    link = SubscriptionItemLink.objects.get(customer_id=customer, active=True)
    assert (link.stripe_subscription_item_id, link.quantity) == (item["id"], 2)

    renewed = json.loads(json.dumps(sub))
    renewed["items"]["data"][0]["current_period_start"] += 3600
    send("customer.subscription.updated", renewed)
    link.refresh_from_db()
    assert int(link.current_period_start.timestamp()) == item["current_period_start"] + 3600

    send("customer.subscription.deleted", {**sub, "status": "canceled"})
    link.refresh_from_db()
    assert link.active is False


def test_a_period_update_never_undoes_a_concurrent_set_quantity(account: Account) -> None:
    """The issue's lost update: set_quantity(9) lands between the webhook's read of the link
    and its write; the 9 survives and is what Stripe gets."""
    customer = account.customer()
    sub = account.subscribe(customer, price=account.seat_price, quantity=2)
    send("customer.subscription.created", sub)
    billflow_usage.set_quantity("seats", customer, 5)
    renewed = json.loads(json.dumps(sub))
    renewed["items"]["data"][0]["current_period_start"] += 3600

    with before_links_are_written(lambda: billflow_usage.set_quantity("seats", customer, 9)):
        send("customer.subscription.updated", renewed)

    link = SubscriptionItemLink.objects.get(customer_id=customer, active=True)
    assert (
        int(link.current_period_start.timestamp())
        == renewed["items"]["data"][0]["current_period_start"]
    )
    assert (link.quantity, link.quantity_version, link.synced_quantity) == (9, 2, 2)
    deliver_pending()
    item = sub["items"]["data"][0]["id"]
    assert account.fake.subscription_item(item)["quantity"] == 9


def test_a_webhook_about_another_subscription_leaves_links_alone(account: Account) -> None:
    customer = account.customer()
    sub = account.subscribe(customer)
    other = account.subscribe(customer, price=account.seat_price, quantity=1)
    send("customer.subscription.created", sub)

    send("customer.subscription.deleted", {**other, "status": "canceled"})

    assert SubscriptionItemLink.objects.get(customer_id=customer).active is True


def error_report(identifier: str, code: str = "meter_event_customer_not_found") -> dict[str, Any]:
    return {
        "id": "evt_test_meter_error",
        "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered",
        "created": timezone.now().isoformat(),
        "data": {
            "developer_message_summary": "1 event failed",
            "reason": {
                "error_count": 1,
                "error_types": [
                    {
                        "code": code,
                        "error_count": 1,
                        "sample_errors": [
                            {
                                "error_message": "No such customer",
                                "request": {"identifier": identifier},
                            }
                        ],
                    }
                ],
            },
        },
    }


def test_meter_error_reports_mark_named_events_failed(account: Account) -> None:
    customer = account.customer()
    event = billflow_usage.record_usage("api_calls", customer, 2, timestamp=ago(hours=1))
    other = billflow_usage.record_usage("api_calls", customer, 3, timestamp=ago(hours=1))
    deliver_pending()

    assert mark_meter_errors(error_report(f"bfu-me-{event.identifier}-0")) == 1
    assert mark_meter_errors({"type": "customer.created"}) == 0

    event.refresh_from_db()
    other.refresh_from_db()
    assert (event.status, event.last_error_code) == (
        UsageEvent.Status.FAILED,
        "meter_event_customer_not_found",
    )
    assert "No such customer" in event.last_error_message
    assert other.status == UsageEvent.Status.SENT


def signed(payload: str, secret: str = SECRET) -> dict[str, str]:
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256)
    return {"HTTP_STRIPE_SIGNATURE": f"t={timestamp},v1={digest.hexdigest()}"}


@pytest.mark.urls("tests.reconcile.urls")
def test_the_view_verifies_the_signature(account: Account, configure: Any) -> None:
    configure(METER_WEBHOOK_SECRET=SECRET)
    event = billflow_usage.record_usage("api_calls", account.customer(), 2)
    payload = json.dumps(error_report(event.identifier))
    http = Client()

    bad = http.post(
        "/stripe/meter-errors/",
        payload,
        content_type="application/json",
        **signed(payload, "whsec_other"),
    )
    assert bad.status_code == 400
    ok = http.post(
        "/stripe/meter-errors/", payload, content_type="application/json", **signed(payload)
    )
    assert (ok.status_code, ok.json()) == (200, {"marked": 1})
    event.refresh_from_db()
    assert event.status == UsageEvent.Status.FAILED


@pytest.mark.urls("tests.reconcile.urls")
def test_a_thin_event_is_fetched_through_the_backend(account: Account, configure: Any) -> None:
    configure(METER_WEBHOOK_SECRET=SECRET, BACKEND="tests.reconcile.backends.EventsBackend")
    event = billflow_usage.record_usage("api_calls", account.customer(), 2)
    EventsBackend.events = {"evt_thin": error_report(event.identifier, "timestamp_in_future")}
    thin = json.dumps(
        {
            "id": "evt_thin",
            "object": "v2.core.event",
            "type": "v1.billing.meter.error_report_triggered",
            "created": timezone.now().isoformat(),
            "related_object": {
                "id": "mtr_123",
                "type": "billing.meter",
                "url": "/v1/billing/meters/mtr_123",
            },
        }
    )

    response = Client().post(
        "/stripe/meter-errors/", thin, content_type="application/json", **signed(thin)
    )

    assert response.json() == {"marked": 1}
    event.refresh_from_db()
    assert event.last_error_code == "timestamp_in_future"


@pytest.mark.urls("tests.reconcile.urls")
def test_the_view_needs_its_secret(account: Account) -> None:
    assert (
        Client().post("/stripe/meter-errors/", "{}", content_type="application/json").status_code
        == 503
    )
