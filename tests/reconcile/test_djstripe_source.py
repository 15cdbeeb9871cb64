"""Subscription items from dj-stripe's synced rows when they are fresh."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from djstripe.models import Subscription, SubscriptionItem

from billflow_usage.models import SubscriptionItemLink
from tests.factories import CustomerFactory
from tests.reconcile.conftest import Account, sync_json

pytestmark = pytest.mark.django_db


def djstripe_subscription(account: Account, customer: str, *, quantity: int) -> Subscription:
    start = int((timezone.now() - timedelta(days=2)).timestamp())
    item: dict[str, Any] = {
        "id": "si_DjFresh1",
        "object": "subscription_item",
        "price": {"id": account.seat_price, "recurring": {"usage_type": "licensed"}},
        "quantity": quantity,
        "current_period_start": start,
        "current_period_end": start + 30 * 86400,
    }
    data = {
        "id": "sub_DjFresh1",
        "object": "subscription",
        "customer": customer,
        "status": "active",
        "livemode": False,
    }
    sub = Subscription.objects.create(
        id="sub_DjFresh1", customer_id=customer, livemode=False, stripe_data=data
    )
    SubscriptionItem.objects.create(
        id="si_DjFresh1", subscription=sub, livemode=False, stripe_data=item
    )
    return sub


@pytest.mark.parametrize("items_from", ["auto", "djstripe"])
def test_fresh_djstripe_rows_are_used_without_asking_stripe(
    account: Account, configure: Any, items_from: str
) -> None:
    configure(DJSTRIPE_MAX_AGE=3600)
    customer = CustomerFactory().id
    djstripe_subscription(account, customer, quantity=6)

    document = sync_json("--customer", customer, "--items-from", items_from)

    assert account.fake.request_count("/v1/subscriptions") == 0
    link = SubscriptionItemLink.objects.get(customer_id=customer, active=True)
    assert (link.stripe_subscription_item_id, link.quantity) == ("si_DjFresh1", 6)
    assert [i["action"] for i in document["items"]] == ["created"]


def test_stale_djstripe_rows_fall_back_to_stripe(account: Account, configure: Any) -> None:
    configure(DJSTRIPE_MAX_AGE=60)
    customer = CustomerFactory().id
    djstripe_subscription(account, customer, quantity=6)
    Subscription.objects.update(djstripe_updated=timezone.now() - timedelta(hours=1))

    sync_json("--customer", customer)

    assert account.fake.request_count("/v1/subscriptions", "GET") == 1
    # Stripe (the fake) knows no such customer's subscriptions: nothing is linked.
    assert not SubscriptionItemLink.objects.filter(customer_id=customer).exists()
