"""Seats: the tracker's recomputed count against the desired quantity and Stripe's."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from billflow_usage.models import SubscriptionItemLink
from billflow_usage.tracking import tracking_disabled
from tests.factories import MemberFactory, WorkspaceFactory
from tests.reconcile.conftest import Account, sync_json
from tests.testapp.models import Member

pytestmark = pytest.mark.django_db


@pytest.fixture
def members_tracked(default_registry: Any) -> None:
    default_registry.track_quantity(
        Member,
        metric="seats",
        customer=lambda member: member.workspace.stripe_customer_id,
        quantity=lambda customer: Member.objects.filter(
            workspace__stripe_customer_id=customer, active=True
        ).count(),
    )


def test_a_stale_desired_quantity_is_recomputed_and_pushed(
    account: Account, members_tracked: None
) -> None:
    customer = account.customer()
    sub = account.subscribe(customer, price=account.seat_price, quantity=1)
    workspace = WorkspaceFactory(stripe_customer_id=customer)
    sync_json()
    with tracking_disabled():  # e.g. an import that bypassed the tracker
        MemberFactory.create_batch(3, workspace=workspace)

    found = sync_json()
    [entry] = found["seats"]
    assert (entry["recomputed"], entry["desired"], entry["stripe"]) == (3, 1, 1)
    assert (entry["status"], entry["action"], entry["applied"]) == (
        "desired_stale",
        "set_quantity",
        False,
    )

    [entry] = sync_json("--apply")["seats"]
    assert entry["applied"] is True
    item = sub["items"]["data"][0]["id"]
    assert account.fake.subscription_item(item)["quantity"] == 3
    link = SubscriptionItemLink.objects.get(customer_id=customer, active=True)
    assert (link.quantity, link.synced_quantity, link.quantity_in_sync) == (3, 3, True)
    assert sync_json()["seats"] == []


def test_a_quantity_changed_in_stripe_is_pushed_back(
    account: Account, client: stripe.StripeClient
) -> None:
    """No tracker: the link's desired quantity is the truth."""
    customer = account.customer()
    sub = account.subscribe(customer, price=account.seat_price, quantity=2)
    sync_json()
    item = sub["items"]["data"][0]["id"]
    client.v1.subscription_items.update(item, {"quantity": 7})

    [entry] = sync_json()["seats"]
    assert (entry["recomputed"], entry["desired"], entry["stripe"], entry["action"]) == (
        None,
        2,
        7,
        "push",
    )

    [entry] = sync_json("--apply")["seats"]
    assert entry["applied"] is True
    assert account.fake.subscription_item(item)["quantity"] == 2
    assert sync_json()["seats"] == []
