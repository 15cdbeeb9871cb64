"""The folding step: add new ledger rows to their hour's ``UsageHourTotal``, off the hot path.

Workers run it (``billflow_worker`` each loop, the Celery task, ``billflow_sync``); it can be
called as :func:`fold_usage` from a scheduler too. It only makes reads cheaper: figures are
exact whether it ran or not, since readers add the rows not folded yet.

Each batch locks the rows it folds (``SKIP LOCKED``: concurrent folds share the work, and a
cancellation waits for the fold holding its row, then recounts the hour), adds them to their
hours and marks them folded in one transaction. Then it notices the threshold crossings of
usage recorded without ``enforce_limit`` (trackers, bulk paths), in the current billing
period, and announces them after that transaction commits.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import connections, router, transaction
from django.utils import timezone

from billflow_usage.delivery.claim import lock_skipping
from billflow_usage.identifiers import CORRECTION_PREFIX
from billflow_usage.models import Metric, UsageEvent, UsageLimit
from billflow_usage.models.tally import Tally, merge_into
from billflow_usage.models.usage_total import HourKey, add_to_hours, hour_of
from billflow_usage.usage_limits.checking import applicable_limit, status_of
from billflow_usage.usage_limits.crossings import record_crossings
from billflow_usage.usage_limits.usage import billing_period, period_tally

logger = logging.getLogger("billflow_usage.limits")

#: Rows folded per transaction.
FOLD_BATCH_SIZE = 5000
#: A fold of at least this many rows refreshes PostgreSQL's statistics of the ledger.
ANALYZE_AFTER = 100_000

FIELDS = ("pk", "metric_id", "customer_id", "occurred_at", "value", "status", "identifier")


def fold_usage(*, batch_size: int = FOLD_BATCH_SIZE, max_batches: int | None = None) -> int:
    """Fold the rows not folded yet, batch after batch, then record the threshold crossings
    of the customers whose rows were folded; returns how many rows were folded.

    Crossings are looked for once the batches are done, not per batch: a backlog's figures
    include every row not folded yet, so a look per batch would sum the backlog again and
    again. A crash in between delays the crossing until the customer's next folded usage.
    """
    using = router.db_for_write(UsageEvent)
    folded = batches = 0
    pairs: set[tuple[int, str]] = set()
    while max_batches is None or batches < max_batches:
        count = fold_batch(batch_size, pairs=pairs, using=using)
        folded += count
        batches += 1
        if count < batch_size:
            break
    if folded >= ANALYZE_AFTER:
        _refresh_statistics(using)
    if pairs:
        with transaction.atomic(using=using):
            _notice_crossings(pairs, using)
    if folded:
        logger.debug("Folded %s ledger rows into hourly totals", folded)
    return folded


def _refresh_statistics(using: str) -> None:
    """After a large fold, do what autovacuum would do soon: clean and count the ledger.

    Until then PostgreSQL's statistics still say most rows are unfolded, so its planner
    would read a customer's unfolded rows with a scan of the ledger instead of the small
    ``bfu_event_unfolded_idx``, and that index still holds the folded rows' dead entries.
    VACUUM skips the pages nothing changed on; inside a transaction (where VACUUM can't run)
    only ANALYZE, which reads a fixed-size sample.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    table = connection.ops.quote_name(UsageEvent._meta.db_table)
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    with connection.cursor() as cursor:
        cursor.execute(f"{command} {table}")


def fold_batch(batch_size: int, *, pairs: set[tuple[int, str]], using: str) -> int:
    """Fold at most ``batch_size`` rows in one transaction; returns how many, and adds the
    (metric, customer) pairs they count for to ``pairs``."""
    with transaction.atomic(using=using):
        waiting = UsageEvent.objects.using(using).filter(folded=False)
        # Ordered as bfu_event_unfolded_idx, which finds them without a scan of the ledger.
        rows = list(
            lock_skipping(waiting, using)
            .order_by("customer_id", "metric_id")
            .values_list(*FIELDS)[:batch_size]
        )
        if not rows:
            return 0
        tallies = _tallies(rows)
        add_to_hours(tallies, using)
        UsageEvent.objects.using(using).filter(pk__in=[row[0] for row in rows]).update(folded=True)
    pairs.update((metric, customer) for metric, customer, _ in tallies)
    return len(rows)


def _tallies(
    rows: list[tuple[int, int | None, str, datetime, int, str, str]],
) -> dict[HourKey, Tally]:
    """Each hour's tally of the rows that stand for usage (the others are only marked)."""
    tallies: dict[HourKey, Tally] = {}
    for pk, metric_id, customer_id, at, value, status, identifier in rows:
        if metric_id is None or status == UsageEvent.Status.CANCELLED:
            continue
        if identifier.startswith(CORRECTION_PREFIX):
            continue
        merge_into(tallies, (metric_id, customer_id, hour_of(at)), Tally.of_row(value, at, pk))
    return tallies


def _notice_crossings(pairs: set[tuple[int, str]], using: str) -> None:
    """Record the crossings of the current period for each (metric, customer) folded now."""
    limited = set(
        UsageLimit.objects.using(using)
        .filter(metric_id__in={metric for metric, _ in pairs})
        .values_list("metric_id", flat=True)
    )
    if not limited:
        return
    metrics = Metric.objects.using(using).in_bulk(limited)
    now = timezone.now()
    for metric_id, customer_id in sorted(pairs):
        metric = metrics.get(metric_id)
        if metric is None:
            continue
        limit = applicable_limit(metric, customer_id)
        if limit is None:
            continue
        period = billing_period(metric, customer_id, now)
        used = period_tally(metric, customer_id, period).by_formula(metric.aggregation)
        status = status_of(metric, customer_id, period, used, 0, limit)
        record_crossings(metric, status, using=using)
