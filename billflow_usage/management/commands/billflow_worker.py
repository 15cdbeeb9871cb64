"""``manage.py billflow_worker``: the long-running delivery loop.

Run as many as you like against PostgreSQL (claims use SKIP LOCKED); each batch finishes
before a SIGTERM or SIGINT stops the worker, so nothing is left half-marked.

Two kinds of concurrency: ``--concurrency`` batches in flight (threads that each claim, send
and mark their own batches, so database work overlaps sending), all sharing one backend and
its ``DELIVERY_CONCURRENCY`` Stripe requests in flight.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections, router

from billflow_usage.backends import get_backend
from billflow_usage.backends.base import CREDENTIAL_CODES, BaseBackend
from billflow_usage.bounds import BATCH_SIZE, IDLE_SLEEP, WORKER_THREADS, check_options
from billflow_usage.delivery import DeliveryStats, deliver_pending
from billflow_usage.models import SubscriptionItemLink, UsageEvent
from billflow_usage.tracking.seats import refresh_stale_quantities
from billflow_usage.usage_limits.folding import fold_usage

logger = logging.getLogger("billflow_usage")

#: Each numeric option and its range (see billflow_usage.bounds).
BOUNDS = {"batch_size": BATCH_SIZE, "concurrency": WORKER_THREADS, "idle_sleep": IDLE_SLEEP}


class Command(BaseCommand):
    help = (
        "Deliver pending usage events and seat quantities through the configured backend, "
        "batch after batch, until SIGTERM/SIGINT (or, with --once, until nothing is due)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Deliver what is due now, then exit."
        )
        parser.add_argument(
            "--batch-size",
            type=BATCH_SIZE,
            default=None,
            help=f"Events claimed per batch, {BATCH_SIZE.expected} "
            "(default: BILLFLOW_USAGE['BATCH_SIZE']).",
        )
        parser.add_argument(
            "--concurrency",
            type=WORKER_THREADS,
            default=1,
            help=(
                "Batches in flight: threads each claiming, sending and marking their own "
                f"batches (PostgreSQL only), {WORKER_THREADS.expected}. They share "
                "BILLFLOW_USAGE['DELIVERY_CONCURRENCY'] Stripe requests in flight."
            ),
        )
        parser.add_argument(
            "--idle-sleep",
            type=IDLE_SLEEP,
            default=1.0,
            help=f"Seconds to wait when nothing is due, {IDLE_SLEEP.expected} (default: 1).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        check_options(options, BOUNDS)
        self.verbosity = int(options["verbosity"])
        self.once = bool(options["once"])
        self.batch_size: int | None = options["batch_size"]
        self.idle_sleep: float = options["idle_sleep"]
        self.stop = threading.Event()
        self.output_lock = threading.RLock()
        concurrency = self._concurrency(options["concurrency"])
        backend = get_backend()
        total = DeliveryStats()
        try:
            with self._stop_on_signals():
                self._say(2, f"billflow_worker started: {concurrency} thread(s), {backend!r}")
                if concurrency == 1:
                    total = self._loop(backend, "worker")
                else:
                    total = self._threads(backend, concurrency)
        finally:
            backend.close()
        self._say(1, self.style.SUCCESS(f"billflow_worker stopped: {total.summary()}"))

    def _concurrency(self, wanted: int) -> int:
        using = router.db_for_write(UsageEvent)
        if wanted > 1 and not connections[using].features.has_select_for_update_skip_locked:
            self._say(
                1,
                self.style.WARNING(
                    f"--concurrency {wanted} needs row locks (PostgreSQL); "
                    f"{connections[using].vendor} gets one thread."
                ),
            )
            return 1
        return wanted

    def _threads(self, backend: BaseBackend, count: int) -> DeliveryStats:
        totals = [DeliveryStats() for _ in range(count)]

        def run(index: int) -> None:
            try:
                totals[index] = self._loop(backend, f"worker-{index + 1}")
            finally:
                connections.close_all()  # this thread's connections only

        threads = [
            threading.Thread(target=run, args=(i,), name=f"billflow-worker-{i + 1}")
            for i in range(count)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # stay responsive to signals in the main thread
        total = DeliveryStats()
        for stats in totals:
            total += stats
        return total

    def _loop(self, backend: BaseBackend, name: str) -> DeliveryStats:
        total = DeliveryStats()
        while not self.stop.is_set():
            _refresh_connections()
            try:
                # Seat counts a crash left stale are recounted first, so they are pushed too.
                refresh_stale_quantities()
                # New rows into hourly totals (and the threshold crossings they bring).
                fold_usage(max_batches=1)
                stats = deliver_pending(backend=backend, batch_size=self.batch_size, max_batches=1)
            except Exception as exc:
                if self.once:
                    raise CommandError(f"Delivery failed: {type(exc).__name__}: {exc}") from exc
                logger.exception("billflow_worker: batch failed; retrying after a pause")
                self._say(1, self.style.ERROR(f"[{name}] batch failed: {type(exc).__name__}"))
                self.stop.wait(max(self.idle_sleep, 1.0))
                continue
            if stats.idle:
                if self.once:
                    break
                self.stop.wait(self.idle_sleep)
                continue
            total += stats
            self._say(1, f"[{name}] {stats.summary()}")
            if stats.refused or stats.seats_refused:
                self._say(1, self.style.ERROR(f"[{name}] {_refused_credentials()}"))
        return total

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """Finish the current batch, then stop, on SIGTERM or SIGINT."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: Any) -> None:
            self._say(1, f"{signal.Signals(signum).name} received: stopping after this batch.")
            self.stop.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _say(self, level: int, message: str) -> None:
        if self.verbosity >= level:
            with self.output_lock:
                self.stdout.write(message)


def _refused_credentials() -> str:
    """What the rows waiting on refused credentials say to do (never the key itself)."""
    waiting = UsageEvent.objects.filter(
        status=UsageEvent.Status.PENDING, last_error_code__in=CREDENTIAL_CODES
    ).order_by("-next_attempt_at")
    links = SubscriptionItemLink.objects.filter(last_error_code__in=CREDENTIAL_CODES)
    message = (
        waiting.values_list("last_error_message", flat=True).first()
        or links.values_list("last_error_message", flat=True).first()
        or "the backend refused our credentials."
    )
    return f"Nothing is delivered until this is fixed: {message}"


def _refresh_connections() -> None:
    """Drop broken or expired connections between batches (CONN_MAX_AGE), like a request
    boundary would; a connection inside a transaction (tests) is left alone."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
