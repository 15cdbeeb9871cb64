"""Retry at once what waited out an outage, as soon as the sink answers again.

While the sink is down, every attempt fails and rows back off exponentially, up to
``RETRY_MAX_DELAY`` (an hour by default). Without this, a row that failed just before the sink
came back would wait out the rest of its delay. Instead, the first batch that goes through
after outage answers (as the backend's :meth:`~BaseBackend.is_outage` classifies them) makes
every row still waiting on one of those answers due again, in one UPDATE. Rows that failed
for reasons of their own (a lock timeout on one customer, say) keep their backoff.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime

from billflow_usage.backends.base import BaseBackend, Outcome, Result
from billflow_usage.models import UsageEvent

logger = logging.getLogger("billflow_usage")


class OutageWatch:
    """The outage answers this process has seen since the sink last answered, and how many
    batches in a row had their credentials refused (rows waiting on credentials back off
    with it, and while it is not 0 a batch first tries one event: see
    :func:`~billflow_usage.delivery.sending.send`)."""

    def __init__(self) -> None:
        self._codes: set[str] = set()
        self._lock = threading.Lock()
        self.refused_batches = 0

    def forget(self) -> None:
        """Drop what was seen (a new test, a sink replaced)."""
        with self._lock:
            self._codes.clear()
            self.refused_batches = 0

    def observe(
        self, backend: BaseBackend, results: Iterable[Result], *, using: str, now: datetime
    ) -> int:
        """Note one batch's answers; once one went through after an outage, make the rows
        waiting on it due now. Returns how many rows were made due."""
        answers = list(results)
        outage = {result.code for result in answers if backend.is_outage(result)}
        went_through = any(result.outcome == Outcome.DELIVERED for result in answers)
        with self._lock:
            if not went_through:
                self._codes |= outage
                if any(result.rejects_credentials for result in answers):
                    self.refused_batches += 1
                return 0
            codes, self._codes = self._codes, outage
            self.refused_batches = 0
        if not codes:
            return 0
        woken = (
            UsageEvent.objects.using(using)
            .filter(
                status=UsageEvent.Status.PENDING,
                next_attempt_at__gt=now,
                last_error_code__in=sorted(codes),
            )
            .update(next_attempt_at=now)
        )
        if woken:
            logger.info(
                "%s answers again: %d event(s) waiting after %s retried now",
                type(backend).__name__,
                woken,
                ", ".join(sorted(codes)),
            )
        return woken


#: One per process: workers' threads, on_commit attempts and Celery tasks share what they saw.
outage_watch = OutageWatch()
