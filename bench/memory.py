"""Peak memory: the delivery benchmark's worker process (4 batches and 16 requests in flight)
drains 100,000 pending events over 1,000 customers (``v2``, no added latency). Its peak
resident set (``VmHWM``) is compared with its resident set when idle, before the backlog
arrived: a worker streams (claims batch after batch), so the growth is bounded by the
batches in flight, not by the backlog.

Target: growth under 50 MB. Four batches (``BATCH_SIZE`` 1,000 rows as plain tuples) and 16
request bodies of 100 events are a few MB; 50 MB leaves room for the allocator, threads,
connection buffers and caches, and is well under what the backlog itself takes once loaded,
measured alongside as the model instances of the same rows.
"""

from __future__ import annotations

import tracemalloc

from bench.delivery import WORKER_ARGS, WORKER_SETTINGS
from bench.draining import (
    backlog,
    clear_ledger,
    compare,
    drain,
    fake_stripe,
    meter_totals,
    new_metric,
)
from bench.report import Figure
from billflow_usage.models import Metric, UsageEvent

EVENTS = 100_000
CUSTOMERS = 1_000
TARGET_MB = 50


def run() -> list[Figure]:
    with fake_stripe() as fake:
        customers = fake.create_customers(CUSTOMERS)
        clear_ledger()
        metric = new_metric("bench-memory", fake)
        before = meter_totals(fake, metric.event_name)
        drained = drain(
            {**WORKER_SETTINGS, "METER_API": "v2", "STRIPE_API_BASE": fake.url},
            backlog(metric, customers, EVENTS),
            args=WORKER_ARGS,
        )
        agreement = compare(metric, meter_totals(fake, metric.event_name) - before)
    if not agreement.exact:
        raise AssertionError(f"memory: not delivered exactly once: {agreement}")
    idle, peak = drained.idle_rss[0] / 1024, drained.peak_rss[0] / 1024
    label = f"worker memory, draining {EVENTS:,} events"
    return [
        Figure(f"{label}: idle RSS", f"{idle:,.0f} MB"),
        Figure(f"{label}: peak RSS", f"{peak:,.0f} MB"),
        Figure(
            f"{label}: growth",
            f"{peak - idle:,.1f} MB",
            f"< {TARGET_MB} MB",
            peak - idle < TARGET_MB,
        ),
        Figure(f"{label}: the backlog loaded at once", f"{loaded_size(metric):,.0f} MB"),
    ]


def loaded_size(metric: Metric) -> float:
    """MB Python allocates to hold the whole backlog as model instances (what a worker that
    loaded everything would need)."""
    tracemalloc.start()
    try:
        rows = list(UsageEvent.objects.filter(metric=metric))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(rows) == EVENTS
    return peak / 2**20
