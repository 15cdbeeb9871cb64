"""The world the billing model runs in: one Stripe account in the fake, a small SaaS on top.

Each example of the state machine starts from an empty ledger and an empty fake Stripe:
two workspaces (Stripe customers), each subscribed to a metered price per meter and to two
per-seat prices, and the trackers a SaaS would declare (orders counted, order units summed
from a numeric field, members as seats).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.tracking.registry import TrackerRegistry
from tests.testapp.models import Member, Order, Workspace

#: Metered metrics: key -> formula. "calls" is recorded through the API only, "units" and
#: "orders" by trackers (and the API).
METERED = {"calls": "sum", "units": "sum", "orders": "count"}
#: Licensed metrics: "seats" is counted by a tracker, "licenses" set with set_quantity().
LICENSED = ("seats", "licenses")
CUSTOMERS = 2
#: How long ago the subscriptions' billing period started.
PERIOD_AGE = timedelta(days=3)


def workspace_customer(obj: Order | Member) -> str:
    return obj.workspace.stripe_customer_id


def active_members(customer_id: str) -> int:
    return Member.objects.filter(workspace__stripe_customer_id=customer_id, active=True).count()


@dataclass
class Account:
    """What one example's Stripe account and SaaS hold."""

    workspaces: list[Workspace]
    #: Metric key -> each customer's subscription to its price: {customer_id: "sub_..."}.
    subscriptions: dict[str, dict[str, str]]
    #: Metric key -> the subscription item of each customer: {customer_id: "si_..."}.
    items: dict[str, dict[str, str]]

    @property
    def customers(self) -> list[str]:
        return [w.stripe_customer_id for w in self.workspaces]


def build_account(fake: FakeStripe, now: datetime) -> Account:
    """Meters, prices, customers and subscriptions in the fake; metrics, links and
    workspaces in the database, as ``billflow_sync`` would have left them."""
    meters = {key: fake.create_meter(key, formula=formula) for key, formula in METERED.items()}
    prices = {key: fake.create_price(meter=meter["id"])["id"] for key, meter in meters.items()}
    prices |= {key: fake.create_price(unit_amount=1000)["id"] for key in LICENSED}
    for key, formula in METERED.items():
        Metric.objects.create(
            key=key,
            event_name=key,
            aggregation=formula,
            stripe_meter_id=meters[key]["id"],
            stripe_price_id=prices[key],
        )
    for key in LICENSED:
        Metric.objects.create(key=key, kind=Metric.Kind.LICENSED, stripe_price_id=prices[key])
    workspaces = []
    subscriptions: dict[str, dict[str, str]] = {key: {} for key in prices}
    items: dict[str, dict[str, str]] = {key: {} for key in prices}
    for number in range(CUSTOMERS):
        customer = str(fake.create_customer(email=f"owner{number}@example.com")["id"])
        workspaces.append(Workspace.objects.create(name=f"w{number}", stripe_customer_id=customer))
        fake.clock.set((now - PERIOD_AGE).timestamp())
        try:
            for key, price in prices.items():
                quantity = 0 if key in LICENSED else None
                subscription = fake.create_subscription(customer, price, quantity=quantity)
                [item] = subscription["items"]["data"]
                subscriptions[key][customer] = subscription["id"]
                items[key][customer] = item["id"]
                _link(key, customer, subscription, item)
        finally:
            fake.clock.reset()
    return Account(workspaces, subscriptions, items)


def declare_trackers(registry: TrackerRegistry) -> None:
    registry.track(Order, metric="orders", customer=workspace_customer)
    registry.track(
        Order,
        metric="units",
        customer=workspace_customer,
        delta="quantity",
        on=("create", "update", "delete"),
    )
    registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )


def _link(key: str, customer: str, subscription: dict[str, Any], item: dict[str, Any]) -> None:
    licensed = key in LICENSED
    SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=Metric.objects.get(key=key),
        stripe_subscription_id=subscription["id"],
        stripe_subscription_item_id=item["id"],
        quantity=0 if licensed else None,
        synced_quantity=0 if licensed else None,
        current_period_start=datetime.fromtimestamp(item["current_period_start"], tz=UTC),
        current_period_end=datetime.fromtimestamp(item["current_period_end"], tz=UTC),
    )
