"""record_usage: what it stores, and that every bad input stores nothing."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

import billflow_usage
from billflow_usage.exceptions import (
    IdentifierConflict,
    InvalidUsage,
    UnknownMetric,
    WrongMetricKind,
)
from billflow_usage.models import UsageEvent
from billflow_usage.signals import usage_recorded
from tests.factories import CustomerFactory, MetricFactory, OrderFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db


def test_records_a_pending_row(metric):
    event = billflow_usage.record_usage("orders", "cus_A1", 3)
    stored = UsageEvent.objects.get()
    assert stored == event
    assert (stored.metric, stored.customer_id, stored.value) == (metric, "cus_A1", 3)
    assert stored.status == UsageEvent.Status.PENDING
    assert stored.identifier.startswith("bfu_")
    assert stored.next_attempt_at <= timezone.now()
    assert stored.livemode is False


def test_accepts_metric_instance_decimal_and_float(metric):
    billflow_usage.record_usage(metric, "cus_A1", Decimal("4"))
    billflow_usage.record_usage(metric, "cus_A1", 2.0)
    assert sorted(UsageEvent.objects.values_list("value", flat=True)) == [2, 4]


def test_negative_values_are_corrections(metric):
    assert billflow_usage.record_usage(metric, "cus_A1", -2).value == -2


def test_generated_identifiers_are_unique(metric):
    first = billflow_usage.record_usage(metric, "cus_A1")
    second = billflow_usage.record_usage(metric, "cus_A1")
    assert first.identifier != second.identifier


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"value": True}, InvalidUsage, "bool"),
        ({"value": 1.5}, InvalidUsage, "fractional"),
        ({"value": Decimal("0.5")}, InvalidUsage, "fractional"),
        ({"value": float("nan")}, InvalidUsage, "finite"),
        ({"value": "12"}, InvalidUsage, "whole number"),
        ({"value": 10**16}, InvalidUsage, "15 digits"),
        ({"identifier": ""}, InvalidUsage, "must not be empty"),
        ({"identifier": "i" * 101}, InvalidUsage, "at most 100"),
        ({"customer": "acct_123"}, InvalidUsage, "not a Stripe customer ID"),
        ({"customer": None}, InvalidUsage, "customer must be"),
        ({"customer": 42}, InvalidUsage, "customer must be"),
        ({"timestamp": timezone.now().replace(tzinfo=None)}, InvalidUsage, "naive"),
        ({"metric": "nope"}, UnknownMetric, "No metric with key 'nope'"),
        ({"metric": 7}, UnknownMetric, "Metric or its key"),
    ],
)
def test_bad_input_raises_and_stores_nothing(metric, kwargs, error, message):
    args = {"metric": "orders", "customer": "cus_A1", "value": 1} | kwargs
    billflow_usage.record_usage("orders", "cus_A1", identifier="already-there")
    with pytest.raises(error, match=message):
        billflow_usage.record_usage(
            args.pop("metric"), args.pop("customer"), args.pop("value"), **args
        )
    assert list(UsageEvent.objects.values_list("identifier", flat=True)) == ["already-there"]


def test_a_timestamp_over_5_minutes_ahead_raises_and_stores_nothing(metric):
    """Not in the table above: "now" must be taken when the test runs, not when it's collected."""
    with pytest.raises(InvalidUsage, match="5 minutes"):
        billflow_usage.record_usage(
            "orders", "cus_A1", timestamp=timezone.now() + timedelta(minutes=6)
        )
    assert not UsageEvent.objects.exists()


def test_inactive_metric_rejected(db):
    MetricFactory(key="old", active=False)
    with pytest.raises(UnknownMetric, match="inactive"):
        billflow_usage.record_usage("old", "cus_A1")
    assert not UsageEvent.objects.exists()


def test_licensed_metric_needs_set_quantity(seats):
    with pytest.raises(WrongMetricKind, match=r"'seats' is licensed: use set_quantity\(\)"):
        billflow_usage.record_usage("seats", "cus_A1")
    assert not UsageEvent.objects.exists()


def test_same_identifier_same_content_returns_existing(metric):
    when = timezone.now() - timedelta(hours=1)
    first = billflow_usage.record_usage("orders", "cus_A1", 2, identifier="o-1", timestamp=when)
    again = billflow_usage.record_usage("orders", "cus_A1", 2, identifier="o-1", timestamp=when)
    without_time = billflow_usage.record_usage("orders", "cus_A1", 2, identifier="o-1")
    assert first.pk == again.pk == without_time.pk
    assert UsageEvent.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"value": 3},
        {"customer": "cus_B2"},
        {"metric": "other"},
        {"timestamp": timedelta(hours=-2)},  # relative to now, when the test runs
    ],
)
def test_same_identifier_other_content_conflicts(metric, change):
    MetricFactory(key="other")
    if "timestamp" in change:
        change = {"timestamp": timezone.now() + change["timestamp"]}
    original = {"metric": "orders", "customer": "cus_A1", "value": 2}
    billflow_usage.record_usage(**original, identifier="o-1", timestamp=timezone.now())
    with pytest.raises(IdentifierConflict, match="'o-1' is already recorded"):
        billflow_usage.record_usage(**(original | change), identifier="o-1")
    stored = UsageEvent.objects.get()
    assert (stored.metric.key, stored.customer_id, stored.value) == ("orders", "cus_A1", 2)


def test_conflict_inside_outer_transaction_keeps_it_usable(metric):
    with transaction.atomic():
        billflow_usage.record_usage("orders", "cus_A1", 2, identifier="o-1")
        with pytest.raises(IdentifierConflict):
            billflow_usage.record_usage("orders", "cus_A1", 5, identifier="o-1")
        billflow_usage.record_usage("orders", "cus_A1", 1, identifier="o-2")
    assert UsageEvent.objects.count() == 2


def test_timestamp_older_than_stripe_allows_is_kept_as_failed(metric, caplog):
    old = timezone.now() - timedelta(days=40)
    event = billflow_usage.record_usage("orders", "cus_A1", 5, timestamp=old)
    event.refresh_from_db()
    assert event.status == UsageEvent.Status.FAILED
    assert event.last_error_code == "timestamp_too_far_in_past"
    assert "35 days" in event.last_error_message
    assert "35 days" in caplog.text


def test_dj_stripe_customer_and_subscriber(metric):
    customer = CustomerFactory(id="cus_Dj1", livemode=False)
    assert billflow_usage.record_usage("orders", customer).customer_id == "cus_Dj1"
    assert billflow_usage.record_usage("orders", customer.subscriber).customer_id == "cus_Dj1"


def test_subscriber_without_customer_is_explained(metric):
    workspace = WorkspaceFactory()
    with pytest.raises(InvalidUsage, match="has no dj-stripe Customer in test mode"):
        billflow_usage.record_usage("orders", workspace)


def test_subscriber_with_two_customers_is_ambiguous(metric):
    workspace = WorkspaceFactory()
    CustomerFactory(subscriber=workspace)
    CustomerFactory(subscriber=workspace)
    with pytest.raises(InvalidUsage, match="several dj-stripe Customers"):
        billflow_usage.record_usage("orders", workspace)


def test_live_customer_makes_a_live_row(metric):
    customer = CustomerFactory(livemode=True)
    assert billflow_usage.record_usage("orders", customer).livemode is True


def test_livemode_follows_the_key(metric, settings):
    settings.BILLFLOW_USAGE = settings.BILLFLOW_USAGE | {"STRIPE_API_KEY": "sk_live_xyz"}
    assert billflow_usage.record_usage("orders", "cus_A1").livemode is True


def test_source_is_linked(metric):
    order = OrderFactory()
    event = billflow_usage.record_usage("orders", "cus_A1", source=order)
    assert UsageEvent.objects.get(pk=event.pk).source == order


def test_unsaved_source_rejected(metric):
    with pytest.raises(InvalidUsage, match="saved model instance"):
        billflow_usage.record_usage("orders", "cus_A1", source=OrderFactory.build())


def test_usage_recorded_signal_once_per_new_row(metric):
    seen = []

    def receiver(sender, event, **kwargs):
        seen.append(event.identifier)

    usage_recorded.connect(receiver)
    try:
        billflow_usage.record_usage("orders", "cus_A1", identifier="o-1")
        billflow_usage.record_usage("orders", "cus_A1", identifier="o-1")
    finally:
        usage_recorded.disconnect(receiver)
    assert seen == ["o-1"]


def test_rolled_back_transaction_records_nothing(metric):
    @transaction.atomic
    def failing_request():
        billflow_usage.record_usage("orders", "cus_A1")
        raise RuntimeError("the host's request failed")

    with pytest.raises(RuntimeError):
        failing_request()
    assert not UsageEvent.objects.exists()
