"""1,000 membership changes in one transaction on a ``track_quantity``-tracked model: how many
quantity updates Stripe receives (delivered after the commit by the real StripeBackend to the
fake Stripe, ``DELIVERY="on_commit"``), and how long the transaction takes."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.test import override_settings

import billflow_usage
from bench.benchapp.models import Member, Workspace
from bench.report import Figure
from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.testing.fake_stripe import FakeStripe

METRIC = "bench-seats"
TARGET_UPDATES = 1
#: One change in this many deactivates an earlier member; the others add one.
REMOVAL_EVERY = 4


def active_members(customer_id: str) -> int:
    return Member.objects.filter(workspace__stripe_customer_id=customer_id, active=True).count()


def run(changes: int = 1_000) -> list[Figure]:
    with FakeStripe() as fake, override_settings(BILLFLOW_USAGE=stripe_settings(fake)):
        workspace = _subscribed_workspace(fake)
        tracker = billflow_usage.track_quantity(
            Member,
            metric=METRIC,
            customer=lambda member: member.workspace.stripe_customer_id,
            quantity=active_members,
        )
        try:
            started = time.perf_counter()
            with transaction.atomic():
                members = _change_members(workspace, changes)
                committing = time.perf_counter()
            finished = time.perf_counter()
        finally:
            billflow_usage.tracking.untrack(tracker)
        updates = fake.quantity_updates
    expected = active_members(workspace.stripe_customer_id)
    assert expected == sum(member.active for member in members)
    assert [update["quantity"] for update in updates][-1:] == [expected], updates
    _forget(workspace)
    return [
        Figure(
            f"seats: Stripe quantity updates for {changes:,} changes",
            f"{len(updates)}",
            f"{TARGET_UPDATES}",
            len(updates) <= TARGET_UPDATES,
        ),
        Figure(
            f"seats: {changes:,} changes in one transaction (wall)", f"{finished - started:.2f} s"
        ),
        Figure("seats: of which commit, recount and push", f"{finished - committing:.3f} s"),
    ]


def stripe_settings(fake: FakeStripe) -> dict[str, object]:
    """The bench settings, delivering through the Stripe backend to ``fake``."""
    return {
        **settings.BILLFLOW_USAGE,
        "BACKEND": "billflow_usage.backends.stripe.StripeBackend",
        "STRIPE_API_KEY": "sk_test_bench",
        "STRIPE_API_BASE": fake.url,
        "DELIVERY": "on_commit",
    }


def _subscribed_workspace(fake: FakeStripe) -> Workspace:
    """A workspace whose Stripe customer has a seat subscription, linked as billflow_sync
    would have linked it."""
    customer = str(fake.create_customer()["id"])
    price = str(fake.create_price()["id"])
    subscription = fake.create_subscription(customer, price, quantity=1)
    metric = Metric.objects.create(key=METRIC, kind=Metric.Kind.LICENSED, stripe_price_id=price)
    SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=metric,
        stripe_subscription_id=subscription["id"],
        stripe_subscription_item_id=subscription["items"]["data"][0]["id"],
    )
    return Workspace.objects.create(stripe_customer_id=customer)


def _forget(workspace: Workspace) -> None:
    """Remove what the benchmark made, so the next ones start from an empty database."""
    SubscriptionItemLink.objects.filter(customer_id=workspace.stripe_customer_id).delete()
    Metric.objects.filter(key=METRIC).delete()
    workspace.delete()  # and its members


def _change_members(workspace: Workspace, changes: int) -> list[Member]:
    members: list[Member] = []
    for change in range(changes):
        if change % REMOVAL_EVERY == REMOVAL_EVERY - 1:
            member = members[change // REMOVAL_EVERY]
            member.active = False
            member.save(update_fields=["active"])
        else:
            members.append(Member.objects.create(workspace=workspace))
    return members
