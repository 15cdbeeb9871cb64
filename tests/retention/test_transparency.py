"""Every figure the readers compute (``billflow_sync``'s ledger side, the admin usage page and
its chart) is the same before and after ``billflow_prune``: computed, pruned, computed again."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import cycle
from typing import Any

import pytest
from django.utils import timezone

from billflow_usage.admin.usage_chart import build_chart
from billflow_usage.identifiers import CORRECTION_PREFIX
from billflow_usage.models import DeliveryGroup, Metric, UsageEvent, UsageRollup
from billflow_usage.reconcile.metered import Pair, _ledger_sides
from billflow_usage.services.pruning import prune
from billflow_usage.services.usage_figures import customer_usage
from tests.factories import SubscriptionItemLinkFactory, UsageEventFactory
from tests.retention.conftest import NOW, at

pytestmark = [pytest.mark.django_db, pytest.mark.now(NOW)]

LINKED, UNLINKED = "cus_Linked", "cus_Unlinked"
PERIOD_START = at("06-01 09:30")
#: Where the windows end (the clock ticks on between the two computations).
UNTIL = at("06-15 11:30")
#: Instants the usage page is computed at (an unlinked customer's period is the month).
PAGE_AT = [at("03-20 12:00"), at("04-20 12:00"), at("05-05 12:00"), at("06-15 12:00")]


def windows() -> list[tuple[datetime, datetime]]:
    return [
        (at("03-01 00:00"), at("04-01 00:00")),
        (at("04-01 00:00"), at("05-01 00:00")),
        (at("05-01 00:00"), PERIOD_START),
        (at("03-15 00:00"), at("04-15 00:00")),
        (at("02-01 00:00"), UNTIL),
        (PERIOD_START, UNTIL),  # the open period
        (at("05-20 07:13"), at("06-03 17:41")),  # not day-aligned, after the cutoff
    ]


def build_ledger(metrics: dict[str, Metric]) -> None:
    """Four months of usage of two customers: sent, cancelled and aggregated rows, plus
    rows that keep their day (pending, failed, claimed, a correction)."""
    SubscriptionItemLinkFactory(
        customer_id=LINKED,
        metric=metrics["sum"],
        current_period_start=PERIOD_START,
        current_period_end=at("07-01 09:30"),
    )
    values = cycle([3, 1, 4, 1, 5, 9, 2, 6])
    moment, rows = at("03-01 00:00"), []
    while moment < at("06-15 11:00"):
        rows += [
            UsageEvent(
                metric=metric,
                customer_id=customer,
                occurred_at=moment,
                value=next(values),
                identifier=f"t-{len(rows) + n}",
                status=UsageEvent.Status.SENT,
                sent_at=moment,
            )
            for n, (metric, customer) in enumerate(
                (m, c) for m in metrics.values() for c in (LINKED, UNLINKED)
            )
        ]
        moment += timedelta(hours=11, minutes=13)
    UsageEvent.objects.bulk_create(rows)
    for metric in metrics.values():
        for customer in (LINKED, UNLINKED):
            # Two rows billed at the same moment: the one recorded last is the last value.
            for value in (40, 41):
                event(metric, customer, "04-02 23:59", value, sent=True)
            event(metric, customer, "03-03 10:00", 500, cancelled=True)
            event(metric, customer, "03-10 10:00", 7, pending=True)
            event(metric, customer, "03-11 10:00", 7, failed=True)
            event(metric, customer, "03-12 10:00", 7, claimed=True)
            event(
                metric,
                customer,
                "03-13 10:00",
                7,
                sent=True,
                identifier=f"{CORRECTION_PREFIX}{metric.pk}{customer}",
            )
    group = DeliveryGroup.objects.create(
        identifier="bfu_group_x",
        metric=metrics["sum"],
        customer_id=UNLINKED,
        value=11,
        occurred_at=at("04-08 00:00") + timedelta(seconds=30),
        status=DeliveryGroup.Status.SENT,
    )
    # Occurred the day before, billed (the group's time) on 04-08.
    event(metrics["sum"], UNLINKED, "04-07 23:59", 5, sent=True, group=group)
    event(metrics["sum"], UNLINKED, "04-08 00:00", 6, sent=True, group=group)


def event(metric: Metric, customer: str, when: str, value: int, **traits: Any) -> None:
    moment = at(when) if len(when) == 11 else at(when[:11]).replace(second=int(when[12:]))
    UsageEventFactory(
        metric=metric, customer_id=customer, occurred_at=moment, value=value, **traits
    )


def figures(metrics: dict[str, Metric]) -> dict[str, Any]:
    """Everything the readers show, for every metric, customer, window and page instant."""
    now = timezone.now()
    pairs = [
        Pair(customer, metric, "mtr_x", start, end)
        for metric in metrics.values()
        for customer in (LINKED, UNLINKED)
        for start, end in windows()
    ]
    sides = _ledger_sides(pairs, now=now, settling=0)
    pages = {}
    for instant in PAGE_AT:
        for customer in (LINKED, UNLINKED):
            usage = customer_usage(customer, now=instant)
            pages[(instant, customer)] = (
                [(f.metric.key, f.period, f.ledger, f.pending_events) for f in usage.figures],
                [(s.metric.key, s.days, s.values) for s in usage.daily],
                build_chart(customer, usage.daily, usage.days),
            )
    return {
        "sync": {(p.customer_id, p.metric.key, p.start, p.end): sides[p] for p in pairs},
        "pages": pages,
    }


@pytest.fixture
def metrics(db) -> dict[str, Metric]:
    from tests.factories import MetricFactory

    return {
        formula: MetricFactory(key=f"t-{formula}", aggregation=formula)
        for formula in Metric.Aggregation.values
    }


def test_every_figure_is_the_same_after_pruning(metrics: dict[str, Metric]) -> None:
    build_ledger(metrics)
    rows_before = UsageEvent.objects.count()
    before = figures(metrics)

    # March first (as if a run had been interrupted), then everything that may go.
    prune((timezone.now() - at("04-01 00:00")).days, batch_size=50)
    assert figures(metrics) == before
    prune(35, batch_size=70)

    assert UsageEvent.objects.count() < rows_before / 2
    assert UsageRollup.objects.filter(day__lt=at("03-10 00:00").date()).exists()
    # Days kept whole: a row not final in each of them.
    for day in ("03-10", "03-11", "03-12", "03-13"):
        assert UsageEvent.objects.filter(occurred_at__date=at(f"{day} 00:00").date()).count() > 6
    assert figures(metrics) == before
    march = before["sync"][(UNLINKED, "t-sum", at("03-01 00:00"), at("04-01 00:00"))]
    assert march.total > 0  # the figures compared are not empty ones
