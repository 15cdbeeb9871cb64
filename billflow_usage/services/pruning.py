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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

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
class Day:
    """One customer's usage of one metric on one UTC day, and its oldest row's time (rows
    are filed at or after they occur, so the day's rows are found through the ledger's
    ``(customer, metric, occurred_at)`` index)."""

    metric_id: int
    customer_id: str
    day: date
    first_occurred_at: datetime

    @property
    def start(self) -> datetime:
        return day_start(self.day)


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
    for day, rows in _candidate_days(result, using):
        if dry_run:
            result.days, result.rows = result.days + 1, result.rows + rows
            continue
        compacted = compact_day(day, batch_size=batch_size, using=using)
        if compacted:
            result.days, result.rows = result.days + 1, result.rows + compacted
    logger.info(
        "billflow_prune%s: %d rows of %d days before %s compacted, %d days left alone",
        " (dry run)" if dry_run else "",
        result.rows,
        result.days,
        result.cutoff.date(),
        result.days_left,
    )
    return result


def compact_day(day: Day, *, batch_size: int, using: str) -> int:
    """Compact ``day`` batch after batch; returns the rows compacted."""
    total = 0
    while True:
        compacted = _compact_batch(day, batch_size, using)
        total += compacted
        if compacted < batch_size:
            return total


def _candidate_days(result: PruneResult, using: str) -> Iterator[tuple[Day, int]]:
    """Days before the cutoff that may be compacted, with their row counts (one grouped
    query); counts the others in ``result.days_left``."""
    rows = (
        UsageEvent.objects.using(using)
        .filter(metric__isnull=False, occurred_at__lt=result.cutoff)
        .with_billed_at()
        .filter(Q(billed_at__lt=result.cutoff))
        .annotate(day=TruncDate("billed_at", tzinfo=UTC))
        .order_by()
        .values_list("metric_id", "customer_id", "day")
        .annotate(rows=Count("pk"), blockers=Count("pk", filter=BLOCKING), first=Min("occurred_at"))
    )
    open_from = _open_periods(using)
    for metric_pk, customer, day, count, blockers, first in rows.iterator(chunk_size=5000):
        period_start = open_from.get((metric_pk, customer))
        if blockers or (
            period_start is not None and day_start(day) + timedelta(days=1) > period_start
        ):
            result.days_left += 1
            continue
        yield Day(metric_pk, customer, day, first), count


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


def _compact_batch(day: Day, batch_size: int, using: str) -> int:
    """One transaction: lock up to ``batch_size`` rows of the day, add them to its rollup,
    delete them. Returns how many (0 when the day is done, or no longer compactable)."""
    with transaction.atomic(using=using):
        rows = _rows_of(day, using)
        if rows.filter(BLOCKING).exists():
            logger.info("billflow_prune: %s changed since it was chosen; left alone", day)
            return 0
        ids = list(_lock(rows.order_by("pk"), using).values_list("pk", flat=True)[:batch_size])
        if not ids:
            return 0
        batch = UsageEvent.objects.using(using).filter(pk__in=ids)
        tally = batch.filter(status=UsageEvent.Status.SENT).usage().tallies().get((day.metric_id,))
        groups = set(batch.exclude(group=None).values_list("group_id", flat=True))
        _add_to_rollup(day, tally, len(ids), using)
        batch.delete()
        if groups:
            DeliveryGroup.objects.using(using).filter(pk__in=groups, events__isnull=True).delete()
    return len(ids)


def _rows_of(day: Day, using: str) -> UsageEventQuerySet:
    return (
        UsageEvent.objects.using(using)
        .filter(
            metric_id=day.metric_id,
            customer_id=day.customer_id,
            occurred_at__gte=day.first_occurred_at,
            occurred_at__lt=day.start + timedelta(days=1),
        )
        .billed_between(day.start, day.start + timedelta(days=1))
    )


def _lock(rows: UsageEventQuerySet, using: str) -> UsageEventQuerySet:
    """Lock the rows taken, skipping any another transaction holds (PostgreSQL; SQLite has
    one writer at a time). ``of``: not the delivery group joined for ``billed_at``."""
    if connections[using].features.has_select_for_update_skip_locked:
        return rows.select_for_update(skip_locked=True, of=("self",))
    return rows


def _add_to_rollup(day: Day, tally: Tally | None, rows: int, using: str) -> None:
    """Add ``tally`` (None: only cancelled rows) to the day's rollup, made if missing and
    locked, so two runs compacting the same day add up rather than overwrite."""
    rollups = UsageRollup.objects.using(using)
    key = {"metric_id": day.metric_id, "customer_id": day.customer_id, "day": day.day}
    rollups.bulk_create([UsageRollup(**key)], ignore_conflicts=True)
    rollup = rollups.select_for_update(of=("self",)).select_related("metric").get(**key)
    rollup.absorb(tally or Tally(rollup.metric.aggregation), rows)
    rollup.save()
