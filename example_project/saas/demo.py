"""The example's main job: seed a few workspaces, simulate their usage, and report it."""

from __future__ import annotations

import random
from collections.abc import Callable

from django.db import transaction
from django.db.models import Sum
from djstripe.models import Customer

import billflow_usage
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from saas.models import ApiCall, Member, Workspace

WORKSPACES = [
    ("Acme", "billing@acme.test"),
    ("Globex", "ap@globex.test"),
    ("Initech", "it@initech.test"),
]
ENDPOINTS = ["/v1/search", "/v1/export", "/v1/report"]


def seed_metrics() -> tuple[Metric, Metric]:
    api_calls, _ = Metric.objects.update_or_create(
        key="api-calls",
        defaults={"display_name": "API calls", "kind": Metric.Kind.METERED, "aggregation": "sum"},
    )
    seats, _ = Metric.objects.update_or_create(
        key="seats",
        defaults={
            "display_name": "Seats",
            "kind": Metric.Kind.LICENSED,
            "proration_behavior": Metric.Proration.CREATE_PRORATIONS,
        },
    )
    return api_calls, seats


def seed_workspaces(customer_id_for: Callable[[Workspace], str]) -> list[Workspace]:
    """Create each workspace with its dj-stripe Customer (the Stripe customer it bills)."""
    workspaces = []
    for name, email in WORKSPACES:
        workspace, _ = Workspace.objects.get_or_create(name=name, defaults={"email": email})
        if not Customer.objects.filter(subscriber=workspace).exists():
            customer_id = customer_id_for(workspace)
            Customer.objects.create(
                id=customer_id,
                subscriber=workspace,
                livemode=False,
                email=email,
                stripe_data={"id": customer_id, "object": "customer", "email": email},
            )
        workspaces.append(workspace)
    return workspaces


def simulate_traffic(workspaces: list[Workspace], *, seed: int = 7) -> None:
    """Members join and leave; API calls are served; each is recorded as usage."""
    rng = random.Random(seed)
    for workspace in workspaces:
        with transaction.atomic():
            for index in range(rng.randint(2, 6)):
                Member.objects.create(
                    workspace=workspace, email=f"user{index}@{workspace.email.split('@')[1]}"
                )
            billflow_usage.set_quantity(
                "seats", workspace, Member.objects.filter(workspace=workspace, active=True).count()
            )
        for _ in range(rng.randint(5, 40)):
            with transaction.atomic():
                call = ApiCall.objects.create(workspace=workspace, endpoint=rng.choice(ENDPOINTS))
                billflow_usage.record_usage("api-calls", workspace, source=call)


def ledger_report() -> list[str]:
    """One line per customer and metric: what the ledger holds."""
    totals = (
        UsageEvent.objects.values("customer_id", "metric__key", "status")
        .annotate(total=Sum("value"))
        .order_by("customer_id", "metric__key", "status")
    )
    lines = [_row(r["customer_id"], r["metric__key"], r["status"], r["total"]) for r in totals]
    links = SubscriptionItemLink.objects.filter(active=True).select_related("metric")
    lines += [
        _row(link.customer_id, link.metric.key, "desired", link.quantity)
        for link in links.order_by("customer_id")
    ]
    return lines


def _row(customer_id: str, metric: str, label: str, amount: object) -> str:
    return f"{customer_id:<24} {metric:<10} {label:<9} {amount!s:>6}"
