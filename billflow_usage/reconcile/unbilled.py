"""Unbilled usage: customers with recorded usage for a metric but no active subscription item
for it (Stripe takes the events but no invoice line bills them), and events that failed
permanently, with Stripe's code and message.

A failed event of a customer that has a live item for its metric is *billable*: Stripe bills
nothing for it until someone fixes the cause and retries it (or records the usage again), so
it counts as drift. Failed events of customers without an item are already counted as their
unbilled usage.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from django.db.models import Count, Q, Sum

from billflow_usage.models import Metric, UsageEvent
from billflow_usage.reconcile.items import Key
from billflow_usage.reconcile.report import (
    MAX_FAILED_LISTED,
    FailedEvent,
    Report,
    UnbilledEntry,
)
from billflow_usage.tracking.metered import TRACKER_FAILURES
from billflow_usage.validation import STRIPE_HISTORY, too_old_for_stripe


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
    metrics: list[Metric],
    customers: Collection[str] | None,
    since: datetime,
    report: Report,
    *,
    billed: Collection[Key],
    now: datetime,
) -> None:
    """Count every failed event of ``metrics`` (and the billable ones), with those a tracker
    kept without a metric (its metric doesn't exist); list the newest with what to do."""
    rows = UsageEvent.objects.filter(
        Q(metric__in=metrics) | Q(metric__isnull=True),
        status=UsageEvent.Status.FAILED,
        occurred_at__gte=since,
    )
    if customers:
        rows = rows.filter(customer_id__in=list(customers))
    total = billable = 0
    for customer, metric_pk, events in (
        rows.order_by()
        .values("customer_id", "metric_id")
        .annotate(events=Count("pk"))
        .values_list("customer_id", "metric_id", "events")
    ):
        total += events
        if (customer, metric_pk) in billed:
            billable += events
    report.count("failed_events", total)
    report.count("failed_billable", billable)
    for event in rows.select_related("metric").order_by("-occurred_at", "-pk")[:MAX_FAILED_LISTED]:
        billable_row = (event.customer_id, event.metric_id) in billed
        action, detail = _remedy(event, billable=billable_row, now=now)
        report.failed_events.append(
            FailedEvent(
                event.identifier,
                event.customer_id,
                event.metric_key,
                event.value,
                event.occurred_at,
                event.last_error_code,
                event.last_error_message,
                action,
                detail,
            )
        )


def _remedy(event: UsageEvent, *, billable: bool, now: datetime) -> tuple[str, str]:
    """What someone must do about a failed event: (action, detail)."""
    cause = event.last_error_code or "failed"
    if event.metric is None or cause in TRACKER_FAILURES:
        return "record_again", (
            f"{cause}; its tracker never recorded it as billable usage, so a retry is refused: "
            "fix the cause, then record it with record_usage() as its message says"
        )
    if not billable:
        return "none", (
            f"{cause}; the customer has no live subscription item for {event.metric.key}: "
            "see unbilled usage"
        )
    if too_old_for_stripe(event.occurred_at, now=now):
        return "record_again", (
            f"{cause}; older than Stripe's {STRIPE_HISTORY.days}-day window, so a retry is "
            "refused too: record the usage again in the current period, or bill it with an "
            "invoice item"
        )
    return "retry", (
        f"{cause}; not billed until someone acts: fix the cause, then retry it from the admin "
        '(Usage events, "Retry selected failed events") or record the usage again'
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
