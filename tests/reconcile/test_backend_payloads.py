"""dj-stripe's subscriptions are Stripe JSON, read by the configured backend
(``parse_subscription``). A backend with no Stripe subscriptions (locmem here) reads none:
no link is created or deactivated from what it can't read, and nothing is logged as a
failure."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone
from djstripe.models import Subscription, SubscriptionItem
from djstripe.signals import WEBHOOK_SIGNALS

from billflow_usage.backends.base import ReadNotSupported
from billflow_usage.backends.locmem import LocMemBackend
from billflow_usage.models import SubscriptionItemLink
from tests.factories import CustomerFactory, LicensedMetricFactory, SubscriptionItemLinkFactory
from tests.reconcile.conftest import sync_json

pytestmark = pytest.mark.django_db

LOCMEM = "billflow_usage.backends.locmem.LocMemBackend"


@pytest.fixture
def link(settings: Any) -> SubscriptionItemLink:
    settings.BILLFLOW_USAGE = {"BACKEND": LOCMEM, "DELIVERY": "worker", "DJSTRIPE_MAX_AGE": 3600}
    metric = LicensedMetricFactory()
    link: SubscriptionItemLink = SubscriptionItemLinkFactory(
        customer_id=CustomerFactory().id, metric=metric, quantity=3
    )
    return link


def canceled(link: SubscriptionItemLink) -> dict[str, Any]:
    """The link's subscription as Stripe sends it once canceled."""
    start = int((timezone.now() - timedelta(days=2)).timestamp())
    item = {
        "id": link.stripe_subscription_item_id,
        "object": "subscription_item",
        "price": {"id": link.metric.stripe_price_id, "recurring": {"usage_type": "licensed"}},
        "quantity": 3,
        "current_period_start": start,
        "current_period_end": start + 30 * 86400,
    }
    return {
        "id": link.stripe_subscription_id,
        "object": "subscription",
        "customer": link.customer_id,
        "status": "canceled",
        "livemode": False,
        "items": {"object": "list", "data": [item]},
    }


def test_the_default_backend_reads_no_subscription_payloads() -> None:
    with pytest.raises(ReadNotSupported, match=r"LocMemBackend cannot read subscription"):
        LocMemBackend.parse_subscription({"id": "sub_1", "object": "subscription"})


def test_a_webhook_the_backend_cannot_read_changes_nothing_and_fails_nothing(
    link: SubscriptionItemLink, caplog: pytest.LogCaptureFixture
) -> None:
    event = SimpleNamespace(data={"object": canceled(link)})
    with caplog.at_level(logging.INFO, logger="billflow_usage"):
        WEBHOOK_SIGNALS["customer.subscription.deleted"].send(sender=None, event=event)

    link.refresh_from_db()
    assert link.active
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "cannot read subscription payloads" in caplog.text


def test_stored_subscriptions_the_backend_cannot_read_deactivate_nothing(
    link: SubscriptionItemLink,
) -> None:
    """``--items-from djstripe`` takes "no rows" as "no subscriptions"; rows it can't read
    are not "no rows": the step says so and leaves every link as it is."""
    data = canceled(link)
    items = data.pop("items")["data"]
    sub = Subscription.objects.create(
        id=data["id"], customer_id=link.customer_id, livemode=False, stripe_data=data
    )
    SubscriptionItem.objects.create(
        id=items[0]["id"], subscription=sub, livemode=False, stripe_data=items[0]
    )

    for items_from in ("djstripe", "auto"):
        document = sync_json("--customer", link.customer_id, "--items-from", items_from)

        link.refresh_from_db()
        assert link.active
        assert document["items"] == []
        errors = [(e["step"], e["code"]) for e in document["errors"]]
        assert errors == [("items", "unsupported")]
