"""Saving a tracked model vs the same model untracked, interleaved, each save in a transaction
(as under ATOMIC_REQUESTS); django-simple-history's tracking of the same model is measured the
same way as a reference point, when it is installed (the ``bench`` extra)."""

from __future__ import annotations

import statistics
import time

from django.db import models, transaction

import billflow_usage
from bench.benchapp import models as bench_models
from bench.benchapp.models import PlainOrder, TrackedOrder
from bench.report import Figure
from billflow_usage.models import Metric, UsageEvent

TARGET_RATIO = 1.3
REFERENCE = "hot path: django-simple-history / untracked"


def run(saves: int = 10_000, chunk: int = 100) -> list[Figure]:
    history_order = getattr(bench_models, "HistoryOrder", None)
    contenders: list[type[models.Model]] = [PlainOrder, TrackedOrder]
    if history_order is not None:
        contenders.append(history_order)
    metric = Metric.objects.create(key="bench-orders")
    tracker = billflow_usage.track(
        TrackedOrder, metric=metric.key, customer=lambda order: order.customer_id
    )
    seconds: dict[type[models.Model], list[float]] = {model: [] for model in contenders}
    try:
        for number, start in enumerate(range(0, saves, chunk)):
            customer = f"cus_bench{start % 1000:04d}"
            # Each chunk starts with the next contender, so none always runs first.
            turn = number % len(contenders)
            for model in contenders[turn:] + contenders[:turn]:
                seconds[model].append(_time_saves(model, customer, chunk))
    finally:
        billflow_usage.tracking.untrack(tracker)
    recorded = UsageEvent.objects.filter(metric=metric)
    assert recorded.count() == saves
    recorded.delete()  # the next benchmarks start from an empty ledger
    metric.delete()
    medians = {model: statistics.median(times) for model, times in seconds.items()}
    plain, tracked = medians[PlainOrder], medians[TrackedOrder]
    ratio = tracked / plain
    figures = [
        Figure("hot path: untracked save (median)", f"{plain * 1e6:.0f} us"),
        Figure("hot path: tracked save (median)", f"{tracked * 1e6:.0f} us"),
        Figure(
            "hot path: tracked / untracked",
            f"{ratio:.2f}",
            f"<= {TARGET_RATIO}",
            ratio <= TARGET_RATIO,
        ),
    ]
    if history_order is None:
        print(
            f"{REFERENCE}: skipped, django-simple-history is not installed "
            "(pip install -e '.[bench]', which make bench does)"
        )
        return [*figures, Figure(REFERENCE, "skipped")]
    history = medians[history_order]
    return [
        *figures,
        Figure("hot path: django-simple-history save (median)", f"{history * 1e6:.0f} us"),
        Figure(REFERENCE, f"{history / plain:.2f}", "reference"),
    ]


def _time_saves(model: type[models.Model], customer: str, count: int) -> float:
    """Seconds per save, over ``count`` saves of ``model``."""
    started = time.perf_counter()
    for _ in range(count):
        with transaction.atomic():
            model._default_manager.create(customer_id=customer)
    return (time.perf_counter() - started) / count
