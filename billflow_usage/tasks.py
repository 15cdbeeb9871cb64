"""Celery task for ``BILLFLOW_USAGE["DELIVERY"] = "celery"`` (needs the ``celery`` extra).

Enqueued once per committed transaction that recorded usage; schedule it with Celery beat too
(e.g. every minute) so retries and rate-limited seat pushes go out without new traffic.
"""

from __future__ import annotations

from celery import shared_task

from billflow_usage.delivery import deliver_pending
from billflow_usage.usage_limits.folding import fold_usage


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
