"""``deliver_pending``: the one entry point every way of running delivery uses (the
on_commit attempt, ``billflow_worker``, the Celery task, ``billflow_sync``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Collection

from django.db import router
from django.utils import timezone

from billflow_usage.backends import get_backend
from billflow_usage.backends.base import BaseBackend
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery import claim, marking, sending
from billflow_usage.delivery.claimed import Outcomes
from billflow_usage.delivery.observed import observe_events
from billflow_usage.delivery.recovery import outage_watch
from billflow_usage.delivery.seats import push_due_seats
from billflow_usage.delivery.stats import DeliveryStats
from billflow_usage.models import UsageEvent

logger = logging.getLogger("billflow_usage")


def deliver_pending(
    *,
    backend: BaseBackend | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
    time_limit: float | None = None,
    event_ids: Collection[int] | None = None,
    link_ids: Collection[int] | None = None,
) -> DeliveryStats:
    """Deliver due usage events and seat quantities, batch after batch, until none is due.

    ``max_batches`` and ``time_limit`` (seconds) bound the run: after the time limit no
    request starts and, with backends that can bound their calls (:meth:`BaseBackend.within`,
    the Stripe backend), no request outlives it; rows not sent are given back without an
    attempt. ``event_ids`` / ``link_ids`` restrict it to those rows (an empty collection
    means none of that kind). Never call it inside a transaction that recorded usage: claims
    must commit before anything is sent. Without ``backend`` the configured one is built and
    closed afterwards.
    """
    own_backend = backend is None
    sink = backend or get_backend()
    deadline = None if time_limit is None else time.monotonic() + time_limit
    size = batch_size or billflow_settings.BATCH_SIZE
    total = DeliveryStats()
    try:
        while max_batches is None or total.batches < max_batches:
            batch = deliver_batch(
                sink, batch_size=size, deadline=deadline, event_ids=event_ids, link_ids=link_ids
            )
            if batch.idle:
                break
            total += batch
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        if own_backend:
            sink.close()
    return total


def deliver_batch(
    backend: BaseBackend,
    *,
    batch_size: int,
    deadline: float | None = None,
    event_ids: Collection[int] | None = None,
    link_ids: Collection[int] | None = None,
) -> DeliveryStats:
    """Claim, send and mark one batch of events and one of seat quantities."""
    started = time.monotonic()
    using = router.db_for_write(UsageEvent)
    stats = DeliveryStats(batches=1)
    bounded = backend.within(deadline)  # no request starts, nor outlives, the deadline
    if event_ids is None or event_ids:
        stats += _deliver_events(bounded, using, batch_size, deadline, event_ids)
    if link_ids is None or link_ids:
        seats = push_due_seats(
            bounded, using=using, limit=batch_size, deadline=deadline, link_ids=link_ids
        )
        if seats.seats_refused:
            logger.error(
                "%r refused our credentials for %d seat quantity push(es): nothing will be "
                "delivered until they work (the subscription item links say what to fix).",
                backend,
                seats.seats_refused,
            )
        stats += seats
    stats.batches = 1
    if not stats.idle:
        logger.info(
            "billflow_usage batch via %s: %s (%.2fs)",
            type(backend).__name__,
            stats.summary(),
            time.monotonic() - started,
        )
    return stats


def _deliver_events(
    backend: BaseBackend,
    using: str,
    batch_size: int,
    deadline: float | None,
    event_ids: Collection[int] | None,
) -> DeliveryStats:
    held = claim.claim_events(
        using=using,
        now=timezone.now(),
        batch_size=batch_size,
        lease=billflow_settings.CLAIM_LEASE,
        exclusive=backend.one_call_per_customer_meter,
        aggregation_window=billflow_settings.AGGREGATION_WINDOW,
        event_ids=event_ids,
    )
    stats = DeliveryStats(claimed=len(held.events))
    if not held.events:
        return stats
    items, decided = sending.plan(
        held,
        using=using,
        subscription_items=backend.needs_subscription_items,
        by_second=backend.sets_totals_per_second,
    )
    refused_before = outage_watch.refused_batches
    sent, unsent = sending.send(items, backend, deadline=deadline, probe=refused_before > 0)
    if unsent:
        stats.released = claim.release(using=using, token=held.token, events=unsent)
    _report_refused_credentials(backend, sent)
    marked = marking.mark(
        [*decided, *sent],
        token=held.token,
        using=using,
        backend=backend,
        refused_batches=refused_before + 1,
    )
    outage_watch.observe(backend, [result for _, result in sent], using=using, now=timezone.now())
    observe_events(held, [*decided, *sent], marked, now=timezone.now())
    stats.delivered = len(marked.delivered)
    stats.retried = len(marked.retried)
    stats.failed = len(marked.failed)
    stats.refused = len(marked.refused)
    return stats


def _report_refused_credentials(backend: BaseBackend, sent: Outcomes) -> None:
    """Say loudly, on every batch it happens, that the sink refused our credentials."""
    refused = [(rows, result) for rows, result in sent if result.rejects_credentials]
    if refused:
        logger.error(
            "%r refused our credentials for %d usage event(s): nothing will be delivered "
            "until they work. %s",
            backend,
            sum(len(rows) for rows, _ in refused),
            refused[0][1].message,
        )
