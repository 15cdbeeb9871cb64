"""Saving a tracked model vs the same model untracked, interleaved, each save in a transaction
(as under ATOMIC_REQUESTS)."""

from __future__ import annotations

import statistics
import time

from django.db import transaction

import billflow_usage
from bench.benchapp.models import PlainOrder, TrackedOrder
from bench.report import Figure
from billflow_usage.models import Metric, UsageEvent

TARGET_RATIO = 1.3


def run(saves: int = 10_000, chunk: int = 100) -> list[Figure]:
    Metric.objects.get_or_create(key="bench-orders")
    tracker = billflow_usage.track(
        TrackedOrder, metric="bench-orders", customer=lambda order: order.customer_id
    )
    try:
        tracked, plain = [], []
        for start in range(0, saves, chunk):
            customer = f"cus_bench{start % 1000:04d}"
            plain.append(_time_saves(PlainOrder, customer, chunk))
            tracked.append(_time_saves(TrackedOrder, customer, chunk))
    finally:
        billflow_usage.tracking.registry.untrack(tracker)
    assert UsageEvent.objects.filter(metric__key="bench-orders").count() >= saves
    plain_median, tracked_median = statistics.median(plain), statistics.median(tracked)
    ratio = tracked_median / plain_median
    return [
        Figure("hot path: untracked save (median)", f"{plain_median * 1e6:.0f} us"),
        Figure("hot path: tracked save (median)", f"{tracked_median * 1e6:.0f} us"),
        Figure(
            "hot path: tracked / untracked",
            f"{ratio:.2f}",
            f"<= {TARGET_RATIO}",
            ratio <= TARGET_RATIO,
        ),
    ]


def _time_saves(model: type[PlainOrder] | type[TrackedOrder], customer: str, count: int) -> float:
    """Seconds per save, over ``count`` saves of ``model``."""
    started = time.perf_counter()
    for _ in range(count):
        with transaction.atomic():
            model.objects.create(customer_id=customer)
    return (time.perf_counter() - started) / count
