"""Kept: the configured secrets never reach a stored error, a sync report, a log record or
the fake Stripe's saved state, whatever fails on the way."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from django.core import serializers
from django.core.management import call_command

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, SyncReport, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure, make_due
from tests.factories import LicensedMetricFactory

pytestmark = pytest.mark.django_db

#: A test-mode key the fake accepts, then refuses: only its first 8 and last 4 characters
#: may ever show (as Stripe masks it).
API_KEY = "sk_test_KeptSecretPart0123456789wxyz"
WEBHOOK_SECRET = "whsec_KeptWebhookSecret0123456789"
HIDDEN = ("KeptSecretPart0123456789", "KeptWebhookSecret")


def everything_stored() -> str:
    """Every row the app keeps, as JSON."""
    rows = [
        *UsageEvent.objects.all(),
        *SubscriptionItemLink.objects.all(),
        *SyncReport.objects.all(),
    ]
    return serializers.serialize("json", rows)


def test_no_configured_secret_reaches_rows_reports_logs_or_the_fakes_state(
    fake_stripe: FakeStripe,
    configure: Configure,
    api_calls: Metric,
    customer: str,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    configure(STRIPE_API_KEY=API_KEY, METER_WEBHOOK_SECRET=WEBHOOK_SECRET, METER_API="v1")
    seats = LicensedMetricFactory(key="seats")
    price = fake_stripe.create_price()["id"]
    item = fake_stripe.create_subscription(customer, price)["items"]["data"][0]["id"]
    SubscriptionItemLink.objects.create(
        customer_id=customer, metric=seats, stripe_subscription_item_id=item
    )

    with caplog.at_level(logging.DEBUG):
        billflow_usage.record_usage(api_calls, customer, 3)
        assert deliver_pending().delivered == 1  # the key works: Stripe has requests with it
        fake_stripe.keys.revoke(API_KEY)
        billflow_usage.record_usage(api_calls, customer, 4)
        billflow_usage.set_quantity(seats, customer, 5)
        deliver_pending()  # refused: 401 on the event and on the seat push
        make_due()
        out = io.StringIO()
        call_command("billflow_sync", "--json", "--apply", stdout=out, stderr=io.StringIO())

    refused = UsageEvent.objects.get(value=4)
    assert refused.last_error_code == "credentials_rejected"  # the failures did happen
    assert SyncReport.objects.exists()
    path = tmp_path / "stripe.json"
    fake_stripe.save_state(path)
    formatter = logging.Formatter("%(name)s %(message)s")
    places = {
        "stored rows": everything_stored(),
        "sync output": out.getvalue(),
        "log records": "\n".join(formatter.format(record) for record in caplog.records),
        "fake's saved state": path.read_text(encoding="utf-8"),
        "fake's summary": json.dumps(fake_stripe.keys.summary()),
    }
    for place, text in places.items():
        assert API_KEY not in text, place
        for hidden in HIDDEN:
            assert hidden not in text, place
