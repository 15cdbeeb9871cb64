"""What the example bills for, created in Stripe (the embedded fake or your test account)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import stripe
from djstripe.models import Customer

from billflow_usage.models import Metric, SubscriptionItemLink
from saas.models import Workspace

API_CALLS, SEATS = "api-calls", "seats"


@dataclass(frozen=True)
class Catalog:
    api_calls: Metric
    seats: Metric


def create_catalog(client: stripe.StripeClient) -> Catalog:
    """A meter and metered price for API calls, a licensed price for seats, and their metrics."""
    suffix = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    event_name = f"api_calls_{suffix}"  # one meter per event name, so each run gets its own
    meter = client.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": event_name,
            "default_aggregation": {"formula": "sum"},
        }
    )
    product = client.v1.products.create({"name": "Example SaaS"})
    metered_price = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
        }
    )
    seat_price = client.v1.prices.create(
        {
            "product": product.id,
            "currency": "usd",
            "unit_amount": 1500,
            "recurring": {"interval": "month", "usage_type": "licensed"},
        }
    )
    api_calls, _ = Metric.objects.update_or_create(
        key=API_CALLS,
        defaults={
            "display_name": "API calls",
            "kind": Metric.Kind.METERED,
            "event_name": event_name,
            "stripe_meter_id": meter.id,
            "stripe_price_id": metered_price.id,
            "aggregation": Metric.Aggregation.SUM,
        },
    )
    seats, _ = Metric.objects.update_or_create(
        key=SEATS,
        defaults={
            "display_name": "Seats",
            "kind": Metric.Kind.LICENSED,
            "stripe_price_id": seat_price.id,
            "proration_behavior": Metric.Proration.CREATE_PRORATIONS,
        },
    )
    return Catalog(api_calls, seats)


def subscribe(client: stripe.StripeClient, workspace: Workspace, catalog: Catalog) -> str:
    """Make the workspace a Stripe customer subscribed to both prices; store the links."""
    created = client.v1.customers.create({"name": workspace.name, "email": workspace.email})
    Customer.objects.create(
        id=created.id,
        subscriber=workspace,
        livemode=bool(created.livemode),
        email=workspace.email,
        stripe_data=created.to_dict(),
    )
    subscription = client.v1.subscriptions.create(
        {
            "customer": created.id,
            "items": [
                {"price": catalog.api_calls.stripe_price_id},
                {"price": catalog.seats.stripe_price_id, "quantity": 0},
            ],
        }
    )
    metric_by_price = {
        catalog.api_calls.stripe_price_id: catalog.api_calls,
        catalog.seats.stripe_price_id: catalog.seats,
    }
    for item in subscription["items"]["data"]:
        SubscriptionItemLink.objects.update_or_create(
            customer_id=created.id,
            metric=metric_by_price[item["price"]["id"]],
            active=True,
            defaults={
                "stripe_subscription_id": subscription.id,
                "stripe_subscription_item_id": item["id"],
                "current_period_start": _when(item.get("current_period_start")),
                "current_period_end": _when(item.get("current_period_end")),
                "livemode": bool(created.livemode),
            },
        )
    return str(created.id)


def _when(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
