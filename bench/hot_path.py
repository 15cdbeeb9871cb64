"""The cost of a tracked save, in the two shapes users have: one save per transaction (a
request under ATOMIC_REQUESTS) and 200 saves in one transaction (an import, a task).

Four contenders take turns, transaction by transaction, so a load spike hits them alike:
the model saved untracked; the same save plus the bare ledger INSERT through a raw cursor (the
floor: what a tracked save would cost if the library's Python were free); the model tracked by
``billflow_usage.track()``; and, as the reference, django-simple-history's tracking of the same
model, when it is installed (the ``bench`` extra). Reported per shape: the best round and the
median round (microseconds per save), and each contender's ratio to the untracked save in the
same round (median over rounds, and best over best).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.db import connection, models, transaction

import billflow_usage
from bench.benchapp import models as bench_models
from bench.benchapp.models import PlainOrder, TrackedOrder
from bench.report import Figure
from billflow_usage.models import Metric, UsageEvent

#: Saves per transaction, by shape.
SHAPES = {"1 save/tx": 1, "200 saves/tx": 200}
#: Tracked / untracked targets on PostgreSQL (issue #14), by shape: (target, stretch).
TARGETS = {"1 save/tx": (1.5, 1.3), "200 saves/tx": (2.0, 1.6)}
ROUNDS = 12
SAVES_PER_ROUND = 200

Save = Callable[[str], None]


def run(rounds: int = ROUNDS, saves: int = SAVES_PER_ROUND) -> list[Figure]:
    metric = Metric.objects.create(key="bench-orders")
    tracker = billflow_usage.track(
        TrackedOrder, metric=metric.key, customer=lambda order: order.customer_id
    )
    contenders = _contenders(metric)
    # seconds per save: shape -> contender -> one figure per round
    seconds: dict[str, dict[str, list[float]]] = {shape: {} for shape in SHAPES}
    try:
        for number in range(rounds):
            customer = f"cus_bench{number:04d}"
            for shape, per_transaction in SHAPES.items():
                took = _round(contenders, customer, saves, per_transaction, number)
                for name, figure in took.items():
                    seconds[shape].setdefault(name, []).append(figure)
    finally:
        billflow_usage.tracking.untrack(tracker)
    tracked_rows = UsageEvent.objects.filter(metric=metric, identifier__startswith="bft_")
    assert tracked_rows.count() == rounds * saves * len(SHAPES), "a tracked save was not recorded"
    UsageEvent.objects.filter(metric=metric).delete()  # the next benchmarks start afresh
    metric.delete()
    figures = []
    for shape in SHAPES:
        figures += _figures(shape, seconds[shape])
    if "simple-history" not in contenders:
        print(
            "hot path: django-simple-history skipped, it is not installed "
            "(pip install -e '.[bench]', which make bench does)"
        )
    return figures


def _contenders(metric: Metric) -> dict[str, Save]:
    insert = _bare_insert(metric)

    def untracked(customer: str) -> None:
        PlainOrder.objects.create(customer_id=customer)

    def floor(customer: str) -> None:
        PlainOrder.objects.create(customer_id=customer)
        insert()

    def tracked(customer: str) -> None:
        TrackedOrder.objects.create(customer_id=customer)

    found: dict[str, Save] = {"untracked": untracked, "floor": floor, "tracked": tracked}
    history_order: type[models.Model] | None = getattr(bench_models, "HistoryOrder", None)
    if history_order is not None:
        manager = history_order._default_manager

        def history(customer: str) -> None:
            manager.create(customer_id=customer)

        found["simple-history"] = history
    return found


def _bare_insert(metric: Metric) -> Callable[[], None]:
    """The ledger row a tracked save writes, as one prepared ``INSERT ... ON CONFLICT DO
    NOTHING RETURNING id`` through a raw cursor: only the identifier changes per row."""
    template = UsageEvent(metric=metric, customer_id="cus_bench", value=1, identifier="x")
    fields = [field for field in UsageEvent._meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(UsageEvent._meta.db_table)} "
        f"({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote('identifier')}) DO NOTHING RETURNING {quote('id')}"
    )
    params: list[Any] = [
        field.get_db_prep_save(field.pre_save(template, True), connection) for field in fields
    ]
    slot = [field.attname for field in fields].index("identifier")

    def insert() -> None:
        params[slot] = f"bfu_floor_{uuid.uuid4().hex}"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchone()

    return insert


def _round(
    contenders: dict[str, Save], customer: str, saves: int, per_transaction: int, number: int
) -> dict[str, float]:
    """Seconds per save of each contender over ``saves`` saves, ``per_transaction`` at a time,
    the contenders taking turns transaction by transaction (each turn, and each round,
    starting with the next), so a load spike on a shared machine hits them alike."""
    names = list(contenders)
    totals = dict.fromkeys(names, 0.0)
    for turn in range(saves // per_transaction):
        first = (number + turn) % len(names)
        for name in names[first:] + names[:first]:
            save = contenders[name]
            started = time.perf_counter()
            with transaction.atomic():
                for _ in range(per_transaction):
                    save(customer)
            totals[name] += time.perf_counter() - started
    return {name: total / saves for name, total in totals.items()}


def _figures(shape: str, seconds: dict[str, list[float]]) -> list[Figure]:
    base = seconds["untracked"]
    figures = [
        Figure(
            f"hot path, {shape}: {name} (best / median)",
            f"{min(times) * 1e6:.0f} / {statistics.median(times) * 1e6:.0f} us",
        )
        for name, times in seconds.items()
    ]
    insert = [floor - plain for floor, plain in zip(seconds["floor"], base, strict=True)]
    figures.append(
        Figure(
            f"hot path, {shape}: bare ledger INSERT alone (median)",
            f"{statistics.median(insert) * 1e6:.0f} us",
        )
    )
    for name, times in seconds.items():
        if name == "untracked":
            continue
        median = statistics.median(t / b for t, b in zip(times, base, strict=True))
        best = min(times) / min(base)
        label = f"hot path, {shape}: {name} / untracked (median, best)"
        value = f"{median:.2f}, {best:.2f}"
        if name == "tracked" and connection.vendor == "postgresql":
            target, stretch = TARGETS[shape]
            verdict = "stretch met" if median <= stretch else ""
            figures.append(Figure(label, value, f"<= {target}", median <= target))
            if verdict:
                print(f"hot path, {shape}: {verdict} (<= {stretch})")
        else:
            figures.append(Figure(label, value))
    if "simple-history" in seconds:
        ours = statistics.median(seconds["tracked"])
        theirs = statistics.median(seconds["simple-history"])
        figures.append(
            Figure(
                f"hot path, {shape}: tracked / simple-history (median)",
                f"{ours / theirs:.2f}",
                "< 1",
                ours < theirs,
            )
        )
    return figures
