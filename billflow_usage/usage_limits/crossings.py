"""Threshold crossings: stored once per metric, customer, period and threshold, announced
with ``usage_threshold_crossed`` after the commit that stored them.

Two places notice them: ``record_usage(..., enforce_limit=True)``, which knows the new usage
while it holds the gate, and the folding step, for everything recorded without it
(trackers, ``record_usage_bulk``, plain ``record_usage``). The unique row decides who
announces: whoever inserts it; a concurrent insert waits for the first to commit and then
finds it.
"""

from __future__ import annotations

import functools
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from billflow_usage.models import Metric, UsageLimit, UsageThresholdCrossing
from billflow_usage.signals import usage_threshold_crossed
from billflow_usage.usage_limits.checking import LimitStatus

logger = logging.getLogger("billflow_usage.limits")


def crossed(used: int, limit: int, threshold: int) -> bool:
    """Whether ``used`` reached ``threshold`` percent of ``limit`` (some usage is needed:
    nothing used crosses nothing, even of a limit of 0)."""
    return used > 0 and used * 100 >= threshold * limit


def record_crossings(metric: Metric, status: LimitStatus, *, using: str) -> list[int]:
    """Store the thresholds ``status.used`` reached that are not stored yet, and send the
    signal for each after the current transaction commits. Returns the new thresholds."""
    if status.limit is None:
        return []
    reached = [t for t in status.thresholds if crossed(status.used, status.limit, t)]
    if not reached:
        return []
    known = set(
        UsageThresholdCrossing.objects.using(using)
        .filter(
            metric=metric,
            customer_id=status.customer_id,
            period_start=status.period_start,
            threshold__in=reached,
        )
        .values_list("threshold", flat=True)
    )
    new = [t for t in reached if t not in known and _insert(metric, status, t, using)]
    for threshold in new:
        transaction.on_commit(
            functools.partial(_announce, metric.key, status, threshold), using=using, robust=True
        )
    return new


def _insert(metric: Metric, status: LimitStatus, threshold: int, using: str) -> bool:
    assert status.limit is not None
    try:
        with transaction.atomic(using=using):
            UsageThresholdCrossing.objects.using(using).create(
                metric=metric,
                customer_id=status.customer_id,
                period_start=status.period_start,
                threshold=threshold,
                used=status.used,
                limit=status.limit,
                crossed_at=timezone.now(),
            )
    except IntegrityError:
        return False  # another process stored (and announces) it
    return True


def _announce(metric: str, status: LimitStatus, threshold: int) -> None:
    logger.info(
        "%s crossed %s%% of its %s limit (%s of %s)",
        status.customer_id,
        threshold,
        metric,
        status.used,
        status.limit,
    )
    usage_threshold_crossed.send(
        sender=UsageLimit,
        metric=metric,
        customer_id=status.customer_id,
        threshold=threshold,
        used=status.used,
        limit=status.limit,
        period_start=status.period_start,
    )
