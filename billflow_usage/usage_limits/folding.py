"""The folding step: add new ledger rows to their hour's ``UsageHourTotal``, off the hot path.

Workers run it (``billflow_worker`` each loop, the Celery task, ``billflow_sync``); it can be
called as :func:`fold_usage` from a scheduler too. It only makes reads cheaper: figures are
exact whether it ran or not, since readers add the rows not folded yet.

Each batch locks the rows it folds (``SKIP LOCKED``: concurrent folds share the work, and a
cancellation waits for the fold holding its row, then recounts the hour), adds them to their
hours and marks them folded in one transaction. It also notices the threshold crossings of
usage recorded without ``enforce_limit`` (trackers, bulk paths), in the current billing
period, and announces them after its commit.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from django.db import router, transaction
from django.utils import timezone

from billflow_usage.delivery.claim import lock_skipping
from billflow_usage.identifiers import CORRECTION_PREFIX
from billflow_usage.models import Metric, UsageEvent, UsageLimit
from billflow_usage.models.usage_total import HourKey, Tally, add_to_hours, hour_of
from billflow_usage.usage_limits.checking import applicable_limit, status_of
from billflow_usage.usage_limits.crossings import record_crossings
from billflow_usage.usage_limits.usage import billing_period, period_tally

logger = logging.getLogger("billflow_usage.limits")

#: Rows folded per transaction.
FOLD_BATCH_SIZE = 5000

FIELDS = ("pk", "metric_id", "customer_id", "occurred_at", "value", "status", "identifier")


def fold_usage(*, batch_size: int = FOLD_BATCH_SIZE, max_batches: int | None = None) -> int:
    """Fold the rows not folded yet, batch after batch; returns how many were folded."""
    folded = batches = 0
    while max_batches is None or batches < max_batches:
        count = fold_batch(batch_size)
        folded += count
        batches += 1
        if count < batch_size:
            break
    if folded:
        logger.debug("Folded %s ledger rows into hourly totals", folded)
    return folded


def fold_batch(batch_size: int = FOLD_BATCH_SIZE) -> int:
    """Fold at most ``batch_size`` rows in one transaction; returns how many."""
    using = router.db_for_write(UsageEvent)
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
        _notice_crossings({(metric, customer) for metric, customer, _ in tallies}, using)
    return len(rows)


def _tallies(
    rows: list[tuple[int, int | None, str, datetime, int, str, str]],
) -> dict[HourKey, Tally]:
    """Each hour's tally of the rows that stand for usage (the others are only marked)."""
    tallies: defaultdict[HourKey, Tally] = defaultdict(Tally)
    for pk, metric_id, customer_id, at, value, status, identifier in rows:
        if metric_id is None or status == UsageEvent.Status.CANCELLED:
            continue
        if identifier.startswith(CORRECTION_PREFIX):
            continue
        tallies[(metric_id, customer_id, hour_of(at))].add_row(value, at, pk)
    return dict(tallies)


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
