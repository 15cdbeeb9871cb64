"""Starting delivery after the transaction that recorded usage commits (``DELIVERY``).

The ledger calls :func:`schedule_delivery` for every write; one callback per transaction
collects the IDs of everything the transaction recorded, so a request that records 100 events
makes one delivery attempt, and a rolled-back one makes none.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from billflow_usage import commit_hooks
from billflow_usage.backends import get_backend
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery.engine import deliver_pending

logger = logging.getLogger("billflow_usage")


class AfterCommit:
    """The on_commit callback of one transaction: the rows it recorded, delivered once."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.event_ids: set[int] = set()
        self.link_ids: set[int] = set()

    def __call__(self) -> None:
        try:
            if self.mode == "celery":
                from billflow_usage.tasks import deliver_usage

                deliver_usage.delay()
            else:
                self.deliver_now()
        except Exception:
            # Never break the host's request: the rows stay pending for workers.
            logger.exception("billflow_usage: delivery after commit failed; rows stay pending")

    def deliver_now(self) -> None:
        """Try what this transaction recorded, bounded by ``ON_COMMIT_TIMEOUT``: the time
        limit is a deadline no request starts after nor outlives, with any backend that can
        bound its calls (:meth:`BaseBackend.within`)."""
        timeout = float(billflow_settings.ON_COMMIT_TIMEOUT)
        size = int(billflow_settings.BATCH_SIZE)
        backend = get_backend()
        try:
            deliver_pending(
                backend=backend,
                batch_size=size,
                max_batches=1,
                time_limit=timeout,
                # One batch at most: a bulk import leaves the rest to workers.
                event_ids=sorted(self.event_ids)[:size],
                link_ids=sorted(self.link_ids)[:size],
            )
        finally:
            backend.close()


def schedule_delivery(
    *, using: str, event_ids: Iterable[int] = (), link_ids: Iterable[int] = ()
) -> None:
    """Arrange delivery of these rows after the current transaction commits (or now, in
    autocommit), per ``BILLFLOW_USAGE["DELIVERY"]``; ``worker`` mode does nothing."""
    mode = billflow_settings.DELIVERY
    if mode not in ("on_commit", "celery"):
        return
    callback = commit_hooks.pending_callback(transaction.get_connection(using), AfterCommit)
    if callback is None:
        callback = AfterCommit(mode)
        callback.event_ids.update(event_ids)
        callback.link_ids.update(link_ids)
        transaction.on_commit(callback, using=using, robust=True)
    else:
        callback.event_ids.update(event_ids)
        callback.link_ids.update(link_ids)
