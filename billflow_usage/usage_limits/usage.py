"""A customer's usage of a metered metric in a billing period, exact and cheap.

The period's whole UTC hours come from ``UsageHourTotal`` (rows already folded) plus the
rows not folded yet (``bfu_event_unfolded_idx``); its partial hours at either edge (a
subscription period starts at any minute) are read from the ledger rows themselves. Rows
count when they stand for usage: every status but ``cancelled``, corrections of
``billflow_sync`` left out; each at its ``occurred_at``. Only the period's own rows are
read, so pruning the detail rows of closed periods never changes a current figure.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from billflow_usage.customers import resolve_customer
from billflow_usage.metrics import get_metric
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent, UsageHourTotal
from billflow_usage.models.usage_event import UsageEventQuerySet
from billflow_usage.models.usage_total import HOUR, Tally, hour_of
from billflow_usage.periods import Period, period_at


def current_usage(metric: Metric | str, customer: Any, *, at: datetime | None = None) -> int:
    """The customer's usage of a metered ``metric`` in the billing period containing ``at``
    (default now), by the metric's formula (sum, count or last).

    ``customer`` is anything ``record_usage`` accepts. The period is the customer's
    subscription item's current period for the metric, else the UTC calendar month.
    """
    found = get_metric(metric, kind=Metric.Kind.METERED)
    customer_id = resolve_customer(customer).id
    period = billing_period(found, customer_id, at or timezone.now())
    return period_tally(found, customer_id, period).by_formula(found.aggregation)


def billing_period(metric: Metric, customer_id: str, at: datetime) -> Period:
    """The period containing ``at``: the active subscription item's, else the month."""
    stored = (
        SubscriptionItemLink.objects.filter(customer_id=customer_id, metric=metric, active=True)
        .values_list("current_period_start", "current_period_end")
        .first()
    )
    start, end = stored or (None, None)
    return period_at(at, start, end)


def period_tally(metric: Metric, customer_id: str, period: Period) -> Tally:
    """The usage of ``[period.start, period.end)``: two queries, three for ``last``."""
    hours_from, hours_to = _whole_hours(period)
    tally = _hours_tally(metric, customer_id, hours_from, hours_to)
    rows = _live_rows(metric, customer_id, period, hours_from, hours_to)
    if metric.aggregation == Metric.Aggregation.LAST:
        latest = rows.order_by("-occurred_at", "-pk").values_list("value", "occurred_at", "pk")
        for value, at, pk in latest[:1]:
            tally.take_last(value, at, pk)
    else:
        live = rows.aggregate(total=Sum("value"), events=Count("pk"))
        tally.merge(Tally(live["total"] or 0, live["events"]))
    return tally


def daily_usage(metric: Metric, customer_id: str, period: Period) -> dict[date, int]:
    """Usage per UTC day of the period by the metric's formula (days without rows absent)."""
    hours_from, hours_to = _whole_hours(period)
    days: defaultdict[date, Tally] = defaultdict(Tally)
    hours = UsageHourTotal.objects.filter(
        customer_id=customer_id, metric=metric, hour__gte=hours_from, hour__lt=hours_to
    ).filter(events__gt=0)
    for bucket in hours:
        days[bucket.hour.astimezone(UTC).date()].merge(bucket.tally())
    live = _live_rows(metric, customer_id, period, hours_from, hours_to)
    for value, at, pk in live.values_list("value", "occurred_at", "pk").iterator():
        days[at.astimezone(UTC).date()].add_row(value, at, pk)
    return {day: days[day].by_formula(metric.aggregation) for day in sorted(days)}


def _whole_hours(period: Period) -> tuple[datetime, datetime]:
    """The whole UTC hours inside the period, ``[from, to)``; empty when it has none."""
    first = hour_of(period.start)
    if first < period.start:
        first += HOUR
    last = hour_of(period.end)
    return (first, last) if first < last else (period.start, period.start)


def _hours_tally(metric: Metric, customer_id: str, start: datetime, end: datetime) -> Tally:
    if start >= end:
        return Tally()
    hours = UsageHourTotal.objects.filter(
        customer_id=customer_id, metric=metric, hour__gte=start, hour__lt=end
    )
    if metric.aggregation == Metric.Aggregation.LAST:
        tally = Tally()
        latest = hours.filter(last_at__isnull=False).order_by("-hour")
        for bucket in latest[:1]:
            tally.take_last(bucket.last_value, bucket.last_at, bucket.last_event_id)
        return tally
    figures = hours.aggregate(total=Sum("total"), events=Sum("events"))
    return Tally(figures["total"] or 0, figures["events"] or 0)


def _live_rows(
    metric: Metric, customer_id: str, period: Period, hours_from: datetime, hours_to: datetime
) -> UsageEventQuerySet:
    """The rows no hourly total covers: unfolded rows of the whole hours, and every row of
    the partial hours at the period's edges."""
    edges = Q(occurred_at__gte=period.start, occurred_at__lt=hours_from) | Q(
        occurred_at__gte=hours_to, occurred_at__lt=period.end
    )
    unfolded = Q(folded=False, occurred_at__gte=hours_from, occurred_at__lt=hours_to)
    return (
        UsageEvent.objects.filter(customer_id=customer_id, metric=metric)
        .filter(edges | unfolded)
        .usage()
        .order_by()
    )
