"""The one place that counts usage over the ledger's detail rows *and* the daily rollups
``billflow_prune`` compacted old rows into, so every figure (``billflow_sync``'s ledger side,
the admin usage page and chart) is the same before and after pruning.

A compacted day is counted whole by the window that holds its first moment (UTC midnight):
windows that begin and end at midnight, or anywhere outside compacted days (every open
billing period), count exactly what they did before; consecutive windows never count a day
twice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from django.db.models import Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from billflow_usage.models.limits import STRIPE_HISTORY
from billflow_usage.models.tally import Tally, merge_into
from billflow_usage.models.usage_event import UsageEvent, UsageEventQuerySet
from billflow_usage.models.usage_rollup import UsageRollup, days_starting_in

#: What a figure is broken down by, besides the metric.
Key = Literal["customer_id", "day"]


@dataclass(frozen=True)
class Window:
    """Usage of ``metric_id`` billed in ``[start, end)``."""

    metric_id: int
    start: datetime
    end: datetime


def usage_totals(
    windows: Iterable[Window], *, customers: Collection[str], statuses: Collection[str], by: Key
) -> dict[tuple[Any, ...], int]:
    """Each ``(metric_id, by)``'s usage by the metric's formula: rows that stand for usage
    (see :meth:`UsageEventQuerySet.usage`) in ``statuses``, plus, when ``sent`` is one of
    them, the rollups of the compacted days. Groups without usage are absent."""
    return {
        key: tally.value
        for key, tally in usage_tallies(
            windows, customers=customers, statuses=statuses, by=by
        ).items()
    }


def usage_tallies(
    windows: Iterable[Window], *, customers: Collection[str], statuses: Collection[str], by: Key
) -> dict[tuple[Any, ...], Tally]:
    """:func:`usage_totals` as :class:`Tally` (two queries, three with ``last`` metrics)."""
    windows = list(windows)
    if not windows:
        return {}
    tallies = detail_rows(windows, customers=customers, statuses=statuses, by=by).tallies(by)
    if UsageEvent.Status.SENT in statuses and _may_reach_rollups(windows):
        compacted = Q()
        for window in windows:
            first, stop = days_starting_in(window.start, window.end)
            compacted |= Q(metric_id=window.metric_id, day__gte=first, day__lt=stop)
        rollups = UsageRollup.objects.filter(compacted, customer_id__in=list(customers))
        for key, tally in rollups.tallies(by).items():
            merge_into(tallies, key, tally)
    return tallies


def _may_reach_rollups(windows: list[Window]) -> bool:
    """Whether a window starts early enough to count a compacted day: ``billflow_prune``
    only compacts days that ended :data:`STRIPE_HISTORY` ago (so the usual windows, open
    billing periods, cost no query for rollups)."""
    horizon = timezone.now() - STRIPE_HISTORY
    return any(window.start < horizon for window in windows)


def detail_rows(
    windows: Iterable[Window], *, customers: Collection[str], statuses: Collection[str], by: Key
) -> UsageEventQuerySet:
    """The ledger rows :func:`usage_totals` counts, annotated with ``billed_at`` (and ``day``,
    the UTC day of ``billed_at``, when counting by day)."""
    in_windows = Q()
    for window in windows:
        in_windows |= Q(
            metric_id=window.metric_id, billed_at__gte=window.start, billed_at__lt=window.end
        )
    rows = (
        UsageEvent.objects.filter(customer_id__in=list(customers), status__in=list(statuses))
        .usage()
        .with_billed_at()
        .filter(in_windows)
    )
    return rows.annotate(day=TruncDate("billed_at", tzinfo=UTC)) if by == "day" else rows
