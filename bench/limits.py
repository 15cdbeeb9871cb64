"""Customer-facing usage at scale: ``current_usage`` and ``check_limit`` for one customer with
1,000,000 ledger rows in the billing period (issue #16's target: p50 <= 2 ms on PostgreSQL).

Rows are written with one ``INSERT ... SELECT generate_series`` (not saves), spread over the
period so far; the period is a subscription item's, starting at a minute inside an hour so
both edge hours are read from the ledger. The folding step then folds them into hourly totals
(its throughput is reported), 100 more rows are recorded unfolded, and both reads are timed.
A live sum over the period's rows (what the figure would cost without the totals) is the
reference.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

from django.db import connection
from django.utils import timezone

import billflow_usage
from bench.report import Figure
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent, UsageLimit
from billflow_usage.usage_limits.folding import fold_usage

ROWS = 1_000_000
CUSTOMER = "cus_benchlimits"
TARGET_MS = 2.0


def run(rows: int = ROWS, reads: int = 300) -> list[Figure]:
    metric = Metric.objects.create(key="bench-limits")
    now = timezone.now()
    start = (now - timedelta(days=20)).replace(minute=37, second=0, microsecond=0)
    SubscriptionItemLink.objects.create(
        customer_id=CUSTOMER,
        metric=metric,
        current_period_start=start,
        current_period_end=start + timedelta(days=30),
    )
    UsageLimit.objects.create(metric=metric, limit=10 * rows)
    _insert_rows(metric, rows, start, now)
    unfolded_sum = _median_ms(lambda: billflow_usage.current_usage(metric, CUSTOMER), 5)
    started = time.perf_counter()
    folded = fold_usage(batch_size=20_000)
    fold_seconds = time.perf_counter() - started
    assert folded == rows
    for _ in range(100):
        billflow_usage.record_usage(metric, CUSTOMER, 1)
    assert billflow_usage.current_usage(metric, CUSTOMER) == rows + 100
    usage_ms = _median_ms(lambda: billflow_usage.current_usage(metric, CUSTOMER), reads)
    check_ms = _median_ms(lambda: billflow_usage.check_limit(metric, CUSTOMER), reads)
    return [
        Figure("limits: fold 1M rows into hourly totals", f"{rows / fold_seconds:,.0f} rows/s"),
        Figure("limits: current_usage, 1M rows live-summed (p50)", f"{unfolded_sum:.1f} ms"),
        Figure(
            "limits: current_usage, 1M rows folded (p50)",
            f"{usage_ms:.2f} ms",
            f"<= {TARGET_MS:g} ms",
            usage_ms <= TARGET_MS,
        ),
        Figure(
            "limits: check_limit, 1M rows folded (p50)",
            f"{check_ms:.2f} ms",
            f"<= {TARGET_MS:g} ms",
            check_ms <= TARGET_MS,
        ),
    ]


def _insert_rows(metric: Metric, rows: int, start, now) -> None:  # type: ignore[no-untyped-def]
    """``rows`` sent rows of value 1, evenly over ``[start, now)``, in one statement."""
    step = (now - start) / rows
    table = UsageEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (metric_id, customer_id, value, occurred_at, identifier,
                livemode, status, attempts, next_attempt_at, last_error_code,
                last_error_message, source_object_id, sent_at, created_at)
            SELECT %s, %s, 1, %s + n * %s, 'bench-limits-' || n, false, 'sent', 1, %s, '',
                '', '', %s, %s
            FROM generate_series(0, %s - 1) AS n
            """,
            [metric.pk, CUSTOMER, start, step, now, now, now, rows],
        )
        cursor.execute(f"ANALYZE {table}")


def _median_ms(read: Callable[[], object], times: int) -> float:
    read()  # warm: the metric's row and the plans
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        read()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000
