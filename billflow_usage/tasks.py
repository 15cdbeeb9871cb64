"""Celery tasks (need the ``celery`` extra): delivery and reconciliation on a beat schedule.

``deliver_usage`` is enqueued once per committed transaction that recorded usage when
``BILLFLOW_USAGE["DELIVERY"] = "celery"``; schedule it with Celery beat too (e.g. every
minute) so retries and rate-limited seat pushes go out without new traffic. ``sync_usage`` is
``manage.py billflow_sync`` for beat (e.g. hourly). Both are safe to run twice, at once or
after a worker died mid-run: the ledger's claims, not Celery's acknowledgements, make each
event go to Stripe once (docs/operations.md, "Celery").
"""

from __future__ import annotations

import argparse
import logging

from celery import shared_task

from billflow_usage.bounds import PRUNE_AGE
from billflow_usage.delivery import deliver_pending
from billflow_usage.reconcile import SyncOptions, run_sync
from billflow_usage.services.pruning import prune
from billflow_usage.usage_limits.folding import fold_usage

logger = logging.getLogger("billflow_usage.tasks")


@shared_task(name="billflow_usage.tasks.deliver_usage", ignore_result=True)
def deliver_usage(
    batch_size: int | None = None,
    max_batches: int | None = None,
    time_limit: float | None = None,
) -> dict[str, int]:
    """Fold new rows into hourly totals, then deliver what is due; returns the counts of
    :class:`DeliveryStats`."""
    fold_usage()
    stats = deliver_pending(batch_size=batch_size, max_batches=max_batches, time_limit=time_limit)
    return stats.as_dict()


@shared_task(name="billflow_usage.tasks.sync_usage", ignore_result=True)
def sync_usage(apply: bool = False) -> dict[str, int]:
    """Run ``billflow_sync`` (``--apply`` when ``apply``); returns the report's summary.

    The run is kept as a ``SyncReport`` like the command's. Drift left after the run is
    logged at WARNING (the command's ``--fail-on-drift`` exit, for a task nobody waits on).
    """
    report = run_sync(SyncOptions(apply=apply))
    summary = report.summary()
    if summary["drift_remaining"]:
        logger.warning(
            "billflow_sync: %d drift(s) remain after the run (report #%s); see it in the admin",
            summary["drift_remaining"],
            report.report_id,
        )
    return summary


@shared_task(name="billflow_usage.tasks.prune_usage", ignore_result=True)
def prune_usage(older_than: int) -> dict[str, int]:
    """Run ``billflow_prune --older-than`` for beat (daily); returns what was compacted.

    ``older_than`` is checked as the command checks it, so a schedule with a bad value fails
    on its first run instead of pruning what it shouldn't.
    """
    try:
        days = int(PRUNE_AGE.check(older_than))
    except argparse.ArgumentTypeError as refused:
        raise ValueError(
            f"prune_usage(older_than={older_than!r}): {refused}; fix the beat schedule's kwargs."
        ) from None
    result = prune(days)
    return {"rows": result.rows, "days": result.days, "days_left": result.days_left}
