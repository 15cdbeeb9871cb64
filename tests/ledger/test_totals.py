"""The ledger's usage by the metric's formula, as Stripe's meters count it: the one queryset
``billflow_sync``, the usage page and the delivery of legacy usage records all count with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billflow_usage.identifiers import CORRECTION_PREFIX
from billflow_usage.models import DeliveryGroup, Metric, UsageEvent
from tests.factories import MetricFactory, UsageEventFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 2, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return START + timedelta(minutes=minutes)


def row(
    metric: Metric,
    value: int,
    minutes: int,
    *,
    customer: str = "cus_A1",
    status: str = UsageEvent.Status.SENT,
    group_minutes: int | None = None,
    identifier: str | None = None,
) -> UsageEvent:
    """A row recorded ``minutes`` into the day; with ``group_minutes``, aggregated into a
    delivery group Stripe files at that time."""
    group = None
    if group_minutes is not None:
        group = DeliveryGroup.objects.create(
            identifier=f"bfug_{metric.pk}_{group_minutes}_{value}",
            metric=metric,
            customer_id=customer,
            value=value,
            occurred_at=at(group_minutes),
        )
    extra = {} if identifier is None else {"identifier": identifier}
    return UsageEventFactory(
        metric=metric,
        customer_id=customer,
        value=value,
        occurred_at=at(minutes),
        status=status,
        sent_at=at(minutes) if status == UsageEvent.Status.SENT else None,
        group=group,
        **extra,
    )


@pytest.mark.parametrize(
    ("formula", "rows", "expected"),
    [
        ("sum", [(2, 0), (5, 30), (7, 10)], 14),
        ("sum", [(9, 0), (-4, 5)], 5),  # a negative correction by the caller
        ("count", [(2, 0), (5, 30), (7, 10)], 3),
        ("last", [(2, 0), (5, 30), (7, 10)], 5),  # billed last, not recorded last
        ("last", [(2, 0), (5, 20), (7, 20)], 7),  # same moment: the one recorded last
        ("last", [(4, 0)], 4),
    ],
)
def test_a_metric_is_totalled_by_its_formula(
    formula: str, rows: list[tuple[int, int]], expected: int
) -> None:
    metric = MetricFactory(aggregation=formula)
    for value, minutes in rows:
        row(metric, value, minutes)

    assert UsageEvent.objects.totals_by_formula() == {(metric.pk,): expected}


def test_rows_aggregated_into_a_group_are_billed_at_the_group_s_time() -> None:
    """Stripe gets the group's event, at the group's time: that is when it counts the rows."""
    last = MetricFactory(aggregation="last")
    alone = row(last, 1, minutes=50)
    row(last, 2, minutes=10, group_minutes=60)

    assert UsageEvent.objects.totals_by_formula() == {(last.pk,): 2}
    in_the_first_55_minutes = UsageEvent.objects.billed_between(at(0), at(55))
    assert list(in_the_first_55_minutes.values_list("pk", flat=True)) == [alone.pk]
    assert in_the_first_55_minutes.get().billed_at == at(50)


def test_the_period_is_half_open() -> None:
    metric = MetricFactory()
    for minutes in (0, 30, 60):
        row(metric, 1, minutes)

    assert UsageEvent.objects.billed_between(at(0), at(60)).totals_by_formula() == {(metric.pk,): 2}


def test_cancelled_rows_and_sync_corrections_are_not_usage() -> None:
    metric = MetricFactory()
    row(metric, 3, 0)
    row(metric, 100, 1, status=UsageEvent.Status.CANCELLED)
    row(metric, 40, 2, identifier=f"{CORRECTION_PREFIX}{'0' * 40}")

    assert UsageEvent.objects.totals_by_formula() == {(metric.pk,): 143}
    assert UsageEvent.objects.usage().totals_by_formula() == {(metric.pk,): 3}


def test_each_metric_by_its_own_formula_per_key_in_two_queries(
    django_assert_num_queries,
) -> None:
    calls, logins, storage = (
        MetricFactory(key="calls", aggregation="sum"),
        MetricFactory(key="logins", aggregation="count"),
        MetricFactory(key="storage", aggregation="last"),
    )
    for customer in ("cus_A1", "cus_B2"):
        for minutes, value in enumerate((5, 3, 8)):
            for metric in (calls, logins, storage):
                row(metric, value, minutes, customer=customer)
    row(storage, 1, 9, customer="cus_B2")

    with django_assert_num_queries(2):
        totals = UsageEvent.objects.totals_by_formula("customer_id")

    assert totals == {
        (calls.pk, "cus_A1"): 16,
        (calls.pk, "cus_B2"): 16,
        (logins.pk, "cus_A1"): 3,
        (logins.pk, "cus_B2"): 3,
        (storage.pk, "cus_A1"): 8,
        (storage.pk, "cus_B2"): 1,
    }


def test_without_a_last_metric_one_query(django_assert_num_queries) -> None:
    metric = MetricFactory(aggregation="count")
    row(metric, 1, 0)

    with django_assert_num_queries(1):
        assert UsageEvent.objects.totals_by_formula() == {(metric.pk,): 1}


@pytest.mark.parametrize(
    ("formula", "parts", "expected"),
    [
        ("sum", [3, 0, 4], 7),
        ("count", [3, 0, 4], 7),
        ("last", [3, 9, 4], 4),
        ("sum", [], 0),
        ("last", [], 0),
    ],
)
def test_a_total_from_its_parts_by_the_formula(
    formula: str, parts: list[int], expected: int
) -> None:
    """E.g. a billing period's total from its days' totals."""
    assert Metric(key="m", aggregation=formula).total_of(parts) == expected
