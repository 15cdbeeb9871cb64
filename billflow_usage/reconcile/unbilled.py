"""Unbilled usage: customers with recorded usage for a metric but no active subscription item
for it (Stripe takes the events but no invoice line bills them), and events that failed
permanently, with Stripe's code and message."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from django.db.models import Count, Q, Sum

from billflow_usage.models import Metric, UsageEvent
from billflow_usage.reconcile.report import (
    MAX_FAILED_LISTED,
    FailedEvent,
    Report,
    UnbilledEntry,
)


def find_unbilled(
    metrics: list[Metric],
    usage: dict[int, set[str]],
    billed: Collection[tuple[str, int]],
    report: Report,
    *,
    since: datetime,
) -> None:
    """``usage``: metric pk -> customers with usage in the horizon; ``billed``: the
    (customer, metric pk) pairs that have a live subscription item."""
    for metric in metrics:
        if not metric.is_metered:
            continue
        missing = sorted(c for c in usage.get(metric.pk, ()) if (c, metric.pk) not in billed)
        if not missing:
            continue
        if not (metric.stripe_price_id or metric.stripe_meter_id):
            reason = (
                "the metric has neither stripe_price_id nor stripe_meter_id, so no "
                "subscription item can be matched to it"
            )
        else:
            wanted = metric.stripe_price_id or f"a metered price on meter {metric.stripe_meter_id}"
            reason = f"no active subscription item for {wanted}"
        totals = _totals(metric, missing, since)
        for customer in missing:
            events, value = totals.get(customer, (0, 0))
            report.unbilled.append(UnbilledEntry(customer, metric.key, events, value, reason))


def list_failed(
    metrics: list[Metric], customers: Collection[str] | None, since: datetime, report: Report
) -> None:
    """Failed rows of ``metrics``, and those a tracker kept without a metric (its metric
    doesn't exist)."""
    rows = UsageEvent.objects.filter(
        Q(metric__in=metrics) | Q(metric__isnull=True),
        status=UsageEvent.Status.FAILED,
        occurred_at__gte=since,
    )
    if customers:
        rows = rows.filter(customer_id__in=list(customers))
    report.count("failed_events", rows.count())
    for event in rows.select_related("metric").order_by("-occurred_at", "-pk")[:MAX_FAILED_LISTED]:
        report.failed_events.append(
            FailedEvent(
                event.identifier,
                event.customer_id,
                event.metric_key,
                event.value,
                event.occurred_at,
                event.last_error_code,
                event.last_error_message,
            )
        )


def _totals(metric: Metric, customers: list[str], since: datetime) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for offset in range(0, len(customers), 500):
        rows = (
            UsageEvent.objects.filter(
                metric=metric, customer_id__in=customers[offset : offset + 500]
            )
            .exclude(status=UsageEvent.Status.CANCELLED)
            .filter(occurred_at__gte=since)
        )
        for customer, events, value in (
            rows.order_by()
            .values("customer_id")
            .annotate(events=Count("pk"), total=Sum("value"))
            .values_list("customer_id", "events", "total")
        ):
            found[customer] = (events, int(value or 0))
    return found
