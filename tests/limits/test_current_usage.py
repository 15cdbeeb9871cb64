"""current_usage: exact by every formula, folded or not, cancellations subtracted."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.exceptions import UnknownMetric, WrongMetricKind
from billflow_usage.models import Metric, UsageEvent, UsageHourTotal
from tests.factories import (
    CustomerFactory,
    LicensedMetricFactory,
    MetricFactory,
    SubscriptionItemLinkFactory,
    UsageEventFactory,
)
from tests.limits.conftest import CUSTOMER

# The figures below are of the billing period around the suite's usual instant (tests/clock.py).
pytestmark = [pytest.mark.django_db, pytest.mark.now("2026-06-15T12:00:00Z")]


def record(metric, value=1, *, at=None, customer=CUSTOMER):
    return billflow_usage.record_usage(metric, customer, value, timestamp=at)


@pytest.mark.parametrize("folded", [False, True], ids=["live", "folded"])
def test_sum_count_and_last_are_exact_before_and_after_folding(folded, fold) -> None:
    total = MetricFactory(key="tokens")
    count = MetricFactory(key="requests", aggregation=Metric.Aggregation.COUNT)
    last = MetricFactory(key="storage", aggregation=Metric.Aggregation.LAST)
    now = timezone.now()
    for minutes, value in [(90, 5), (30, 7), (1, 3)]:
        at = now - timedelta(minutes=minutes)
        record(total, value, at=at)
        record(count, 1, at=at)
        record(last, value, at=at)
    record(total, 100, customer="cus_Someoneelse")
    if folded:
        assert fold() == 10
        assert UsageHourTotal.objects.exists()
    assert billflow_usage.current_usage(total, CUSTOMER) == 15
    assert billflow_usage.current_usage("requests", CUSTOMER) == 3
    assert billflow_usage.current_usage(last, CUSTOMER) == 3


def test_half_folded_ledger_counts_each_row_once(api_calls, fold) -> None:
    record(api_calls, 4)
    fold()
    record(api_calls, 6)  # not folded yet
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 10
    fold()
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 10


def test_last_after_folding_takes_the_newest_row_whichever_is_folded(fold) -> None:
    last = MetricFactory(key="storage", aggregation=Metric.Aggregation.LAST)
    now = timezone.now()
    record(last, 9, at=now - timedelta(minutes=1))
    fold()
    record(last, 4, at=now - timedelta(hours=3))  # older, recorded later
    assert billflow_usage.current_usage(last, CUSTOMER) == 9


@pytest.mark.parametrize("fold_first", [False, True], ids=["unfolded", "folded"])
def test_cancelled_rows_are_subtracted_exactly(api_calls, fold, fold_first) -> None:
    keep = record(api_calls, 5)
    cancel = record(api_calls, 7)
    if fold_first:
        fold()
    UsageEvent.objects.filter(pk=cancel.pk).cancel()
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 5
    fold()
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == keep.value


def test_cancelling_the_last_row_of_a_last_metric_falls_back_to_the_one_before(fold) -> None:
    last = MetricFactory(key="storage", aggregation=Metric.Aggregation.LAST)
    now = timezone.now()
    record(last, 2, at=now - timedelta(minutes=10))
    newest = record(last, 8, at=now - timedelta(minutes=5))
    fold()
    UsageEvent.objects.filter(pk=newest.pk).cancel()
    assert billflow_usage.current_usage(last, CUSTOMER) == 2


def test_failed_rows_count_and_corrections_do_not(api_calls, fold) -> None:
    UsageEventFactory(metric=api_calls, customer_id=CUSTOMER, value=3, failed=True)
    UsageEventFactory(metric=api_calls, customer_id=CUSTOMER, value=50, identifier="bfu_sync_x")
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 3
    fold()
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 3


def test_customer_in_every_form_record_usage_accepts(api_calls) -> None:
    customer = CustomerFactory(id=CUSTOMER)
    record(api_calls, 2)
    assert billflow_usage.current_usage(api_calls, customer) == 2
    assert billflow_usage.current_usage(api_calls, customer.subscriber) == 2


def test_unknown_and_licensed_metrics_are_refused_clearly(db) -> None:
    with pytest.raises(UnknownMetric, match="No metric with key 'nope'"):
        billflow_usage.current_usage("nope", CUSTOMER)
    seats = LicensedMetricFactory(key="seats")
    with pytest.raises(WrongMetricKind, match="licensed"):
        billflow_usage.current_usage(seats, CUSTOMER)


@pytest.mark.now("2026-12-01T00:00:30Z")
def test_calendar_month_starts_afresh_at_midnight_utc(api_calls, fold) -> None:
    record(api_calls, 4, at=datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
    record(api_calls, 1, at=datetime(2026, 12, 1, 0, 0, tzinfo=UTC))
    fold()
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 1
    november = datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert billflow_usage.current_usage(api_calls, CUSTOMER, at=november) == 4


@pytest.mark.now("2026-06-20T14:37:30Z")
@pytest.mark.parametrize("folded", [False, True], ids=["live", "folded"])
def test_subscription_period_edges_inside_an_hour(api_calls, fold, folded) -> None:
    start = datetime(2026, 6, 20, 14, 37, tzinfo=UTC)
    SubscriptionItemLinkFactory(
        customer_id=CUSTOMER,
        metric=api_calls,
        current_period_start=start,
        current_period_end=datetime(2026, 7, 20, 14, 37, tzinfo=UTC),
    )
    record(api_calls, 10, at=start - timedelta(microseconds=1))  # the previous period
    record(api_calls, 1, at=start)
    record(api_calls, 2, at=start + timedelta(seconds=20))
    record(api_calls, 40, at=start - timedelta(hours=2))  # same UTC day, previous period
    if folded:
        fold()
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 3
