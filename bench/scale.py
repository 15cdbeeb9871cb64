"""Scale: the hot paths on a ledger of ``BENCH_SCALE_ROWS`` rows (default 10,000,000) against
the same paths on an empty ledger, and ``billflow_prune`` compacting most of it while a worker
delivers.

Every figure is measured twice on the same few *probe* customers (the same rows each time):
once on a ledger holding only theirs, once after the big ledger is generated around them by
``INSERT ... SELECT generate_series`` (PostgreSQL, a few statements, no saves): 90% of it
delivered 40 to 100 days ago (what ``billflow_prune`` compacts), the rest delivered in the
last 20 days, over ``BULK_CUSTOMERS`` other customers. The ratio full / empty is the target
(<= 1.2). Figures:

- a tracked save (``track()`` on a model, each save its own transaction);
- claim and mark: one delivery batch of 100 events through the locmem backend (claim, send
  to memory, mark), so the database work alone;
- the admin usage page's figures (``customer_usage``) of one probe customer;
- ``billflow_sync --dry-run`` over the probe customers (locmem backend: the ledger side);
- ``billflow_prune`` (a process of its own): rows compacted per second, and a worker's
  delivery rate (events per second) while it runs against the rate without it.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

import billflow_usage
from bench.benchapp.models import TrackedOrder
from bench.draining import ROOT, database_url
from bench.report import Figure
from billflow_usage.backends import locmem
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent, UsageRollup
from billflow_usage.services.usage_figures import customer_usage

ROWS = int(os.environ.get("BENCH_SCALE_ROWS", "10000000"))
TARGET = 1.2
BULK_CUSTOMERS = 200
PROBES = [f"cus_probe{n:02d}" for n in range(10)]
PROBE_ROWS = 300
#: Rows per generating statement (each its own transaction).
CHUNK = 1_000_000
#: Events the worker delivers, alone and while pruning runs.
DELIVERED = 30_000
PRUNE_BATCH = 5_000


def run() -> list[Figure]:
    if connection.vendor != "postgresql":
        return [Figure("scale: skipped (needs PostgreSQL: BENCH_DATABASE_URL)", "-")]
    metric = Metric.objects.create(
        key="bench-scale", event_name="bench_scale", stripe_meter_id="mtr_bench_scale"
    )
    _probe_customers(metric)
    empty = _measure(metric)
    started = time.perf_counter()
    _generate(metric, ROWS)
    generated = time.perf_counter() - started
    full = _measure(metric)
    figures = [
        Figure(f"scale: {ROWS:,} rows generated", f"{generated:.0f} s"),
        *(_compare(name, empty[name], full[name]) for name in empty),
    ]
    return figures + _prune_beside_worker(metric)


def _compare(name: str, empty: float, full: float) -> Figure:
    ratio = full / empty
    return Figure(
        f"scale: {name} ({empty * 1e3:.2f} -> {full * 1e3:.2f} ms)",
        f"{ratio:.2f}",
        f"<= {TARGET}",
        ratio <= TARGET,
    )


def _probe_customers(metric: Metric) -> None:
    """The measured customers: a subscription item each, delivered usage this period."""
    now = timezone.now()
    for customer in PROBES:
        SubscriptionItemLink.objects.create(
            customer_id=customer,
            metric=metric,
            stripe_subscription_id=f"sub_{customer}",
            stripe_subscription_item_id=f"si_{customer}",
            current_period_start=now - timedelta(days=10),
            current_period_end=now + timedelta(days=20),
        )
    UsageEvent.objects.bulk_create(
        UsageEvent(
            metric=metric,
            customer_id=customer,
            value=n % 7 + 1,
            occurred_at=now - timedelta(days=2, minutes=n),
            identifier=f"bench_probe_{customer}_{n}",
            status=UsageEvent.Status.SENT,
            sent_at=now,
        )
        for customer in PROBES
        for n in range(PROBE_ROWS)
    )


def _measure(metric: Metric) -> dict[str, float]:
    """Seconds of each path (medians), on the ledger as it is."""
    with connection.cursor() as cursor:
        # Freshly generated rows would otherwise have autovacuum working beside the timings.
        cursor.execute("VACUUM ANALYZE billflow_usage_usageevent")
        cursor.execute("CHECKPOINT")
    return {
        "usage page": _median(lambda: customer_usage(PROBES[0]), 20),
        "billflow_sync": _median(_sync, 3),
        "tracked save": _tracked_save(metric),
        "claim and mark (100 events)": _claim_and_mark(metric),
    }


def _median(action: Callable[[], object], times: int) -> float:
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def _sync() -> None:
    customers = [argument for customer in PROBES for argument in ("--customer", customer)]
    call_command("billflow_sync", "--dry-run", "--json", *customers, stdout=io.StringIO())


def _tracked_save(metric: Metric, saves: int = 1_000, chunk: int = 100) -> float:
    tracker = billflow_usage.track(
        TrackedOrder, metric=metric.key, customer=lambda order: order.customer_id
    )
    seconds = []
    try:
        for _ in range(0, saves, chunk):
            started = time.perf_counter()
            for _ in range(chunk):
                with transaction.atomic():
                    TrackedOrder.objects.create(customer_id=PROBES[1])
            seconds.append((time.perf_counter() - started) / chunk)
    finally:
        billflow_usage.tracking.untrack(tracker)
    order_type = ContentType.objects.get_for_model(TrackedOrder)
    UsageEvent.objects.filter(source_content_type=order_type).delete()
    TrackedOrder.objects.all().delete()
    return statistics.median(seconds)


def _claim_and_mark(metric: Metric, batches: int = 30, size: int = 100) -> float:
    _pending(metric, batches * size, "bench_claim")
    seconds = []
    for _ in range(batches):
        started = time.perf_counter()
        stats = deliver_pending(batch_size=size, max_batches=1)
        seconds.append(time.perf_counter() - started)
        assert stats.delivered == size, stats
    UsageEvent.objects.filter(identifier__startswith="bench_claim").delete()
    locmem.outbox.clear()
    return statistics.median(seconds)


def _pending(metric: Metric, count: int, prefix: str) -> None:
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage(metric, PROBES[n % len(PROBES)], 1, identifier=f"{prefix}_{n}")
        for n in range(count)
    )


def _generate(metric: Metric, rows: int) -> None:
    """``rows`` delivered rows around the probes': 90% 40-100 days old, the rest recent."""
    old = rows * 9 // 10
    for first in range(0, rows, CHUNK):
        last = min(first + CHUNK, rows)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO billflow_usage_usageevent (
                    metric_id, customer_id, value, occurred_at, identifier, source_object_id,
                    livemode, status, attempts, next_attempt_at, sent_at, created_at,
                    last_error_code, last_error_message
                )
                SELECT %(metric)s, 'cus_bulk' || (g %% %(customers)s), g %% 9 + 1, at,
                       'bench_scale_' || g, '', false, 'sent', 1, at, at, at, '', ''
                FROM (
                    SELECT g, CASE WHEN g < %(old)s
                        THEN now() - interval '40 days' - (g %% 5184000) * interval '1 second'
                        ELSE now() - (g %% 1728000) * interval '1 second'
                    END AS at
                    FROM generate_series(%(first)s, %(last)s - 1) AS g
                ) AS generated
                """,
                {
                    "metric": metric.pk,
                    "customers": BULK_CUSTOMERS,
                    "old": old,
                    "first": first,
                    "last": last,
                },
            )


def _prune_beside_worker(metric: Metric) -> list[Figure]:
    """Delivery rate alone, then ``billflow_prune`` in a process of its own (as it runs in
    production) with the worker delivering beside it."""
    alone = _delivery_rate(metric, "bench_alone")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "BENCH_DATABASE_URL": database_url(),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "django", "billflow_prune", "--older-than", "35"]
    started = time.perf_counter()
    pruning = subprocess.Popen(
        [*command, "--batch-size", str(PRUNE_BATCH)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(3)  # started, and past choosing the candidate days
    during = _delivery_rate(metric, "bench_during")
    overlapped = pruning.poll() is None
    output, _ = pruning.communicate()
    seconds = time.perf_counter() - started
    if pruning.returncode != 0:
        raise RuntimeError(f"billflow_prune failed:\n{output}")
    rows = UsageRollup.objects.aggregate(rows=Sum("compacted_rows"))["rows"] or 0
    ratio = during / alone
    return [
        Figure(
            f"scale: billflow_prune ({rows:,} rows, {seconds:.0f} s wall)",
            f"{rows / seconds:,.0f}/s",
        ),
        Figure("scale: worker delivery alone (locmem)", f"{alone:,.0f}/s"),
        Figure(
            "scale: worker delivery while pruning / alone"
            + ("" if overlapped else " (prune ended first)"),
            f"{ratio:.2f}",
            f">= {1 / TARGET:.2f}",
            ratio >= 1 / TARGET,
        ),
    ]


def _delivery_rate(metric: Metric, prefix: str) -> float:
    """Events per second one worker (batches of 500) delivers ``DELIVERED`` events."""
    _pending(metric, DELIVERED, prefix)
    started = time.perf_counter()
    delivered = 0
    while delivered < DELIVERED:
        delivered += deliver_pending(batch_size=500, max_batches=1).delivered
    elapsed = time.perf_counter() - started
    locmem.outbox.clear()
    return DELIVERED / elapsed
