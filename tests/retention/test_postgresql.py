"""``billflow_prune`` beside workers on one PostgreSQL ledger (threads, each with its own
connection): it never blocks a claim nor waits for a row another transaction holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction

import billflow_usage
from billflow_usage.backends import locmem
from billflow_usage.backends.base import MeterEvent
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent, UsageRollup
from billflow_usage.models.usage_totals import Window, usage_totals
from billflow_usage.services.pruning import prune
from tests.factories import MetricFactory
from tests.retention.conftest import NOW, at

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("on_postgresql"),
    pytest.mark.now(NOW),
]

CUSTOMERS = [f"cus_Pg{n}" for n in range(4)]


def old_sent_rows(metric: Metric, days: int, per_day: int) -> None:
    start = at("03-01 00:00")
    UsageEvent.objects.bulk_create(
        UsageEvent(
            metric=metric,
            customer_id=CUSTOMERS[n % len(CUSTOMERS)],
            value=n % 9 + 1,
            occurred_at=start + timedelta(days=n // per_day, seconds=n % per_day),
            identifier=f"old-{n}",
            status=UsageEvent.Status.CANCELLED if n % 17 == 0 else UsageEvent.Status.SENT,
            sent_at=start,
        )
        for n in range(days * per_day)
    )


def totals(metric: Metric) -> dict[tuple[object, ...], int]:
    """The old days' figures (the rows being delivered are today's)."""
    window = Window(metric.pk, at("01-01 00:00"), at("05-01 00:00"))
    return usage_totals([window], customers=CUSTOMERS, statuses=["sent"], by="day")


def in_threads(*jobs: Callable[[], object]) -> None:
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            job()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_pruning_while_workers_claim_delivers_everything_once(settings) -> None:
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "BATCH_SIZE": 20}
    metric = MetricFactory(key="pg-prune")
    old_sent_rows(metric, days=20, per_day=150)
    before = totals(metric)
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage(metric, CUSTOMERS[n % len(CUSTOMERS)], 1) for n in range(400)
    )
    locmem.outbox.clear()

    def drain() -> None:
        while UsageEvent.objects.filter(status=UsageEvent.Status.PENDING).exists():
            deliver_pending(max_batches=1)

    in_threads(drain, drain, lambda: prune(35, batch_size=40))

    sent = [item.identifier for item in locmem.outbox if isinstance(item, MeterEvent)]
    assert len(sent) == len(set(sent)) == 400
    assert UsageEvent.objects.filter(occurred_at__lt=at("04-01 00:00")).count() == 0
    assert UsageEvent.objects.filter(status=UsageEvent.Status.SENT).count() == 400
    assert totals(metric) == before


def test_a_row_held_elsewhere_is_skipped_not_waited_for() -> None:
    metric = MetricFactory(key="pg-held", aggregation=Metric.Aggregation.LAST)
    old_sent_rows(metric, days=2, per_day=40)
    before = totals(metric)
    held = UsageEvent.objects.filter(status=UsageEvent.Status.SENT).order_by("pk")[3]
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        with transaction.atomic():
            UsageEvent.objects.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(timeout=30)

    def prune_while_held() -> None:
        assert locked.wait(timeout=10)
        started = time.monotonic()
        try:
            prune(35, batch_size=8)
        finally:
            release.set()
        assert time.monotonic() - started < 10

    in_threads(hold, prune_while_held)

    assert list(UsageEvent.objects.values_list("pk", flat=True)) == [held.pk]
    assert totals(metric) == before  # the held row and its day's rollup add up
    prune(35)
    assert not UsageEvent.objects.exists()
    assert totals(metric) == before
    assert UsageRollup.objects.count() == 2 * len(CUSTOMERS)
