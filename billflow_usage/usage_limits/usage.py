"""A customer's usage of a metered metric in a billing period, exact and cheap.

The period's whole UTC hours come from ``UsageHourTotal`` (rows already folded) plus the
rows not folded yet (``bfu_event_unfolded_idx``); its partial hours at either edge (a
subscription period starts at any minute) are read from the ledger rows themselves. Rows
count when they stand for usage: every status but ``cancelled``, corrections of
``billflow_sync`` left out; each at its ``occurred_at``. Only the period's own rows are
read, so pruning the detail rows of closed periods never changes a current figure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from django.db import connections, router
from django.db.models import Q
from django.utils import timezone

from billflow_usage.customers import resolve_customer
from billflow_usage.identifiers import CORRECTION_PREFIX
from billflow_usage.metrics import get_metric
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent, UsageHourTotal
from billflow_usage.models.tally import Tally, merge_into
from billflow_usage.models.usage_event import UsageEventQuerySet
from billflow_usage.models.usage_total import HOUR, hour_of
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
    """The usage of ``[period.start, period.end)``: one statement for ``sum`` and ``count``
    (hourly totals, edge rows and unfolded rows added up by the database), four for
    ``last``."""
    hours_from, hours_to = _whole_hours(period)
    if metric.aggregation != Metric.Aggregation.LAST:
        return _sum_and_count(metric, customer_id, period, hours_from, hours_to)
    tally = _latest_hour(metric, customer_id, hours_from, hours_to)
    for rows in _live_rows(metric, customer_id, period, hours_from, hours_to):
        latest = rows.order_by("-occurred_at", "-pk").values_list("value", "occurred_at", "pk")
        for value, at, pk in latest[:1]:
            tally = tally.merge(Tally(last_value=value, last_at=at, last_id=pk))
    return tally


def daily_usage(metric: Metric, customer_id: str, period: Period) -> dict[date, int]:
    """Usage per UTC day of the period by the metric's formula (days without rows absent)."""
    hours_from, hours_to = _whole_hours(period)
    days: dict[date, Tally] = {}
    hours = UsageHourTotal.objects.filter(
        customer_id=customer_id, metric=metric, hour__gte=hours_from, hour__lt=hours_to
    ).filter(events__gt=0)
    for bucket in hours:
        merge_into(days, bucket.hour.astimezone(UTC).date(), bucket.tally)
    for rows in _live_rows(metric, customer_id, period, hours_from, hours_to):
        for value, at, pk in rows.values_list("value", "occurred_at", "pk").iterator():
            merge_into(days, at.astimezone(UTC).date(), Tally.of_row(value, at, pk))
    return {day: days[day].by_formula(metric.aggregation) for day in sorted(days)}


def _whole_hours(period: Period) -> tuple[datetime, datetime]:
    """The whole UTC hours inside the period, ``[from, to)``; empty when it has none."""
    first = hour_of(period.start)
    if first < period.start:
        first += HOUR
    last = hour_of(period.end)
    return (first, last) if first < last else (period.start, period.start)


def _latest_hour(metric: Metric, customer_id: str, start: datetime, end: datetime) -> Tally:
    """The latest row of the folded hours, for ``last``."""
    latest = UsageHourTotal.objects.filter(
        customer_id=customer_id, metric=metric, hour__gte=start, hour__lt=end, last_at__isnull=False
    ).order_by("-hour")
    for bucket in latest[:1]:
        return replace(bucket.tally, total=0, events=0)
    return Tally()


def _sum_and_count(
    metric: Metric, customer_id: str, period: Period, hours_from: datetime, hours_to: datetime
) -> Tally:
    """Sum and count as :func:`_live_rows` and the hourly totals define them, in one
    statement written once: the ORM would spend more time building three queries than the
    database spends answering them. Its conditions are literal where an index depends on
    them (``NOT folded`` is ``bfu_event_unfolded_idx``'s predicate)."""
    connection = connections[router.db_for_read(UsageEvent)]
    at = connection.ops.adapt_datetimefield_value
    who = [customer_id, metric.pk]
    params: list[Any] = [
        *who, at(hours_from), at(hours_to),
        *who, at(period.start), at(hours_from), at(hours_to), at(period.end),
        *who, at(hours_from), at(hours_to),
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(_tally_sql(connection.vendor, connection.ops.quote_name), params)
        total, events = cursor.fetchone()
    return Tally(None, int(total), int(events))


@functools.cache
def _tally_sql(vendor: str, quote: Callable[[str], str]) -> str:
    """The statement of :func:`_sum_and_count` for one database vendor."""
    hours, events = quote(UsageHourTotal._meta.db_table), quote(UsageEvent._meta.db_table)
    usage = (
        f"e.status <> '{UsageEvent.Status.CANCELLED}' "
        f"AND e.identifier NOT LIKE '{CORRECTION_PREFIX.replace('_', chr(92) + '_')}%%' "
        f"ESCAPE '{chr(92)}'"
    )
    return (
        "SELECT COALESCE(SUM(t), 0), COALESCE(SUM(n), 0) FROM ("
        f"SELECT h.total AS t, h.events AS n FROM {hours} h WHERE h.customer_id = %s "
        "AND h.metric_id = %s AND h.hour >= %s AND h.hour < %s "
        f"UNION ALL SELECT e.value, 1 FROM {events} e WHERE e.customer_id = %s "
        "AND e.metric_id = %s AND ((e.occurred_at >= %s AND e.occurred_at < %s) "
        f"OR (e.occurred_at >= %s AND e.occurred_at < %s)) AND {usage} "
        f"UNION ALL SELECT e.value, 1 FROM {events} e WHERE e.customer_id = %s "
        "AND e.metric_id = %s AND NOT e.folded AND e.occurred_at >= %s "
        f"AND e.occurred_at < %s AND {usage}) parts"
    )


def _live_rows(
    metric: Metric, customer_id: str, period: Period, hours_from: datetime, hours_to: datetime
) -> tuple[UsageEventQuerySet, UsageEventQuerySet]:
    """The rows no hourly total covers, in two disjoint sets each with its own index: every
    row of the partial hours at the period's edges (``bfu_event_reconcile_idx``), and the
    unfolded rows of the whole hours (``bfu_event_unfolded_idx``)."""
    rows = UsageEvent.objects.filter(customer_id=customer_id, metric=metric).usage().order_by()
    edges = rows.filter(
        Q(occurred_at__gte=period.start, occurred_at__lt=hours_from)
        | Q(occurred_at__gte=hours_to, occurred_at__lt=period.end)
    )
    unfolded = rows.filter(folded=False, occurred_at__gte=hours_from, occurred_at__lt=hours_to)
    return edges, unfolded
