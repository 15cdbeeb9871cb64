"""Compacting old delivered usage into daily rollups: what ``billflow_prune`` does.

What may be compacted is decided per (customer, metric, UTC day), by the day Stripe filed the
rows (a delivery group's time for aggregated rows), and a day is compacted whole or not at all:

- the day ends before the cutoff: ``--older-than`` days ago, never less than Stripe's 35-day
  window (nothing older can be sent, cancelled in Stripe, or corrected by ``billflow_sync``);
- the day ends before the customer's current billing period of the metric starts (the stored
  subscription item's period; without one, the calendar month, which the cutoff always
  precedes), so open periods are never touched;
- every row of the day is ``sent`` or ``cancelled``, unclaimed, and none is a
  ``billflow_sync`` correction: a day with a pending, failed or claimed row, or a correction
  (which the unbilled and drift reports read), is left alone entirely.

A compacted day's ``sent`` rows are added to its :class:`~billflow_usage.models.UsageRollup`
(sum, count, last value) and its cancelled rows dropped, as the ledger's totals leave them out.
Each batch of at most ``batch_size`` rows is one short transaction that locks only its own rows
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, never a pending row a worker could claim), adds them
to the rollup and deletes them: a crash between batches leaves some of the day in the rollup
and the rest in the ledger, which readers add up to the same figures, and the next run carries
on. Delivery groups left without rows are deleted with their last row.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from billflow_usage.identifiers import CORRECTION_PREFIX
from billflow_usage.models import DeliveryGroup, SubscriptionItemLink, UsageEvent, UsageRollup
from billflow_usage.models.tally import Tally
from billflow_usage.models.usage_event import UsageEventQuerySet
from billflow_usage.models.usage_rollup import day_start
from billflow_usage.validation import STRIPE_HISTORY

logger = logging.getLogger("billflow_usage.prune")

DEFAULT_BATCH_SIZE = 1000
#: Rows that keep their day in the ledger: anything not final, or that reports still read.
BLOCKING = (
    ~Q(status__in=[UsageEvent.Status.SENT, UsageEvent.Status.CANCELLED])
    | Q(claimed_until__isnull=False)
    | Q(identifier__startswith=CORRECTION_PREFIX)
)


@dataclass(frozen=True)
class Span:
    """Consecutive UTC days (``first`` to ``last``) of one customer's usage of one metric,
    compacted together, and their oldest row's time (rows are filed at or after they occur,
    so they are found through the ledger's ``(customer, metric, occurred_at)`` index)."""

    metric_id: int
    customer_id: str
    first: date
    last: date
    first_occurred_at: datetime
    rows: int
    days: int = 1

    @property
    def start(self) -> datetime:
        return day_start(self.first)

    @property
    def end(self) -> datetime:
        return day_start(self.last) + timedelta(days=1)

    def extended(self, other: Span, batch_size: int) -> Span | None:
        """This span with the next candidate day ``other`` added, if it follows this one's
        last day and the rows still fit in one batch."""
        follows = (other.metric_id, other.customer_id, other.first) == (
            self.metric_id,
            self.customer_id,
            self.last + timedelta(days=1),
        )
        if not follows or self.rows + other.rows > batch_size:
            return None
        return replace(
            self,
            last=other.last,
            first_occurred_at=min(self.first_occurred_at, other.first_occurred_at),
            rows=self.rows + other.rows,
            days=self.days + other.days,
        )


@dataclass
class PruneResult:
    """What a run did (or, dry, would do)."""

    cutoff: datetime
    days: int = 0
    rows: int = 0
    #: Old enough days left in the ledger: a row not final, a correction, an open period.
    days_left: int = 0


def cutoff_for(older_than_days: int, *, now: datetime | None = None) -> datetime:
    """The UTC midnight before which days may be compacted: ``older_than_days`` ago, and
    never inside Stripe's window."""
    now = now or timezone.now()
    days = max(older_than_days, STRIPE_HISTORY.days)
    return day_start((now - timedelta(days=days)).astimezone(UTC).date())


def prune(
    older_than_days: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Compact every compactable day older than ``older_than_days`` (see the module)."""
    using = router.db_for_write(UsageEvent)
    result = PruneResult(cutoff_for(older_than_days, now=now))
    for span in _spans(_candidate_days(result, using), batch_size):
        if dry_run:
            result.days, result.rows = result.days + span.days, result.rows + span.rows
            continue
        compacted = compact_span(span, batch_size=batch_size, using=using)
        if compacted:
            result.days, result.rows = result.days + span.days, result.rows + compacted
    logger.info(
        "billflow_prune%s: %d rows of %d days before %s compacted, %d days left alone",
        " (dry run)" if dry_run else "",
        result.rows,
        result.days,
        result.cutoff.date(),
        result.days_left,
    )
    return result


def compact_span(span: Span, *, batch_size: int, using: str) -> int:
    """Compact ``span`` batch after batch (one batch unless a day has more rows than fit);
    returns the rows compacted."""
    total = 0
    while True:
        compacted = _compact_batch(span, batch_size, using)
        total += compacted
        if compacted < batch_size:
            return total


def _spans(days: Iterable[Span], batch_size: int) -> Iterator[Span]:
    """Runs of consecutive candidate days of one customer and metric, as many as fit in a
    batch (a short transaction for many small days)."""
    current: Span | None = None
    for day in days:
        grown = None if current is None else current.extended(day, batch_size)
        if grown is not None:
            current = grown
            continue
        if current is not None:
            yield current
        current = day
    if current is not None:
        yield current


def _candidate_days(result: PruneResult, using: str) -> Iterator[Span]:
    """Days before the cutoff that may be compacted, one span each, in order (one grouped
    query); counts the others in ``result.days_left``."""
    rows = (
        UsageEvent.objects.using(using)
        .filter(metric__isnull=False, occurred_at__lt=result.cutoff)
        .with_billed_at()
        .filter(Q(billed_at__lt=result.cutoff))
        .annotate(day=TruncDate("billed_at", tzinfo=UTC))
        .values_list("metric_id", "customer_id", "day")
        .annotate(rows=Count("pk"), blockers=Count("pk", filter=BLOCKING), first=Min("occurred_at"))
        .order_by("metric_id", "customer_id", "day")
    )
    open_from = _open_periods(using)
    for metric_pk, customer, day, count, blockers, first in rows.iterator(chunk_size=5000):
        period_start = open_from.get((metric_pk, customer))
        still_open = period_start is not None and day_start(day) + timedelta(days=1) > period_start
        if blockers or still_open:
            result.days_left += 1
            continue
        yield Span(metric_pk, customer, day, day, first, count)


def _open_periods(using: str) -> dict[tuple[int, str], datetime]:
    """(metric pk, customer) -> start of the billing period in progress, by stored item."""
    found: dict[tuple[int, str], datetime] = {}
    links = SubscriptionItemLink.objects.using(using).filter(
        active=True, current_period_start__isnull=False
    )
    for metric_pk, customer, start in links.values_list(
        "metric_id", "customer_id", "current_period_start"
    ):
        if start is not None:
            key = (metric_pk, customer)
            found[key] = min(start, found.get(key, start))
    return found


def _compact_batch(span: Span, batch_size: int, using: str) -> int:
    """One transaction: lock up to ``batch_size`` rows of the span, add them to their days'
    rollups, delete them. Returns how many (0 when the span is done, or no longer
    compactable)."""
    with transaction.atomic(using=using):
        rows = _rows_of(span, using)
        if rows.filter(BLOCKING).exists():
            logger.info("billflow_prune: %s changed since it was chosen; left alone", span)
            return 0
        billed_on = TruncDate("billed_at", tzinfo=UTC)
        days = dict(_lock(rows.order_by("pk"), using).values_list("pk", billed_on)[:batch_size])
        if not days:
            return 0
        batch = UsageEvent.objects.using(using).filter(pk__in=list(days))
        sent = batch.filter(status=UsageEvent.Status.SENT).usage()
        tallies = sent.with_billed_at().annotate(day=billed_on).tallies("day")
        groups = set(batch.exclude(group=None).values_list("group_id", flat=True))
        _add_to_rollup(span, tallies, Counter(days.values()), using)
        batch.delete()
        if groups:
            DeliveryGroup.objects.using(using).filter(pk__in=groups, events__isnull=True).delete()
    return len(days)


def _rows_of(span: Span, using: str) -> UsageEventQuerySet:
    """The span's rows (annotated with ``billed_at``)."""
    return (
        UsageEvent.objects.using(using)
        .filter(
            metric_id=span.metric_id,
            customer_id=span.customer_id,
            occurred_at__gte=span.first_occurred_at,
            occurred_at__lt=span.end,
        )
        .billed_between(span.start, span.end)
    )


def _lock(rows: UsageEventQuerySet, using: str) -> UsageEventQuerySet:
    """Lock the rows taken, skipping any another transaction holds (PostgreSQL; SQLite has
    one writer at a time). ``of``: not the delivery group joined for ``billed_at``."""
    if connections[using].features.has_select_for_update_skip_locked:
        return rows.select_for_update(skip_locked=True, of=("self",))
    return rows


def _add_to_rollup(
    span: Span, tallies: dict[tuple[Any, ...], Tally], rows: Counter[date], using: str
) -> None:
    """Add each day's tally (absent: only cancelled rows) and deleted rows to the day's
    rollup, made if missing and locked, so two runs compacting the same day add up rather
    than overwrite."""
    rollups = UsageRollup.objects.using(using)
    key = {"metric_id": span.metric_id, "customer_id": span.customer_id}
    rollups.bulk_create([UsageRollup(**key, day=day) for day in rows], ignore_conflicts=True)
    found = list(
        rollups.select_for_update(of=("self",))
        .select_related("metric")
        .filter(**key, day__in=list(rows))
        .order_by("day")
    )
    for rollup in found:
        tally = tallies.get((span.metric_id, rollup.day), Tally(rollup.metric.aggregation))
        rollup.absorb(tally, rows[rollup.day])
    rollups.bulk_update(found, UsageRollup.FIGURES)
