"""Seats: the tracker's recomputed count against the desired quantity and Stripe's."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

import billflow_usage
from billflow_usage.models import SubscriptionItemLink
from billflow_usage.tracking import tracking_disabled
from tests.factories import MemberFactory, WorkspaceFactory
from tests.reconcile.conftest import Account, sync_exit, sync_json
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


def item_pushes(account: Account, item: str) -> int:
    return account.fake.request_count(f"/v1/subscription_items/{item}", "POST")


@pytest.mark.parametrize("mode", ["check", "apply"])
def test_seats_are_compared_with_what_stripe_has_after_the_push(
    account: Account, mode: str
) -> None:
    """A quantity queued before the run is pushed by its delivery step; the comparison must
    see Stripe's quantity after that push, not the one read before it."""
    customer = account.customer()
    sub = account.subscribe(customer, price=account.seat_price, quantity=2)
    item = sub["items"]["data"][0]["id"]
    sync_json()
    billflow_usage.set_quantity("seats", customer, 5)  # queued: DELIVERY is "worker"

    document, code = sync_exit(*(["--apply"] if mode == "apply" else []))

    assert (code, document["seats"], document["summary"]["drift_remaining"]) == (0, [], 0)
    assert document["delivery"]["seats_pushed"] == 1
    assert account.fake.subscription_item(item)["quantity"] == 5
    assert item_pushes(account, item) == 1


@pytest.mark.parametrize(("in_stripe", "pushes"), [(2, 1), (3, 0)])
def test_an_owned_quantity_set_behind_the_trackers_back_is_recounted_before_the_push(
    account: Account, members_tracked: None, in_stripe: int, pushes: int
) -> None:
    """The tracker owns the quantity: a value stored around it is recounted, and Stripe gets
    the count at most once, never the stray value first."""
    customer = account.customer()
    sub = account.subscribe(customer, price=account.seat_price, quantity=in_stripe)
    item = sub["items"]["data"][0]["id"]
    MemberFactory.create_batch(3, workspace=WorkspaceFactory(stripe_customer_id=customer))
    sync_json()
    billflow_usage.set_quantity("seats", customer, 5)  # e.g. a script, or an old admin edit

    document, code = sync_exit("--apply")

    [entry] = document["seats"]
    assert (entry["recomputed"], entry["desired"], entry["stripe"]) == (3, 5, 3)
    assert (entry["status"], entry["action"], entry["applied"]) == (
        "desired_stale",
        "set_quantity",
        True,
    )
    assert "recounted" in entry["detail"]
    assert "counted by track_quantity(testapp.Member, metric='seats')" in entry["detail"]
    assert (code, document["summary"]["seats_repaired"]) == (0, 1)
    assert account.fake.subscription_item(item)["quantity"] == 3
    assert item_pushes(account, item) == pushes
    link = SubscriptionItemLink.objects.get(customer_id=customer, active=True)
    assert (link.quantity, link.synced_quantity, link.quantity_in_sync) == (3, 3, True)
    again, code = sync_exit("--apply")
    assert (again["seats"], code) == ([], 0)


def test_a_failing_tracker_is_an_error_not_a_repair(
    account: Account, default_registry: Any
) -> None:
    def broken(customer: str) -> int:
        raise RuntimeError(f"the members table of {customer} is locked")

    default_registry.track_quantity(
        Member, metric="seats", customer=lambda m: m.workspace.stripe_customer_id, quantity=broken
    )
    customer = account.customer()
    account.subscribe(customer, price=account.seat_price, quantity=2)
    sync_json()

    document, code = sync_exit("--apply")

    [entry] = document["seats"]
    assert (entry["status"], entry["desired"], entry["stripe"], entry["applied"]) == (
        "error",
        2,
        2,
        False,
    )
    assert "members table" in entry["detail"]
    assert [e["step"] for e in document["errors"]] == ["seats"]
    assert code == 4
