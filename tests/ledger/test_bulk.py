"""record_usage_bulk: all or nothing, in order, idempotent by identifier."""

import pytest

import billflow_usage
from billflow_usage import Usage
from billflow_usage.exceptions import IdentifierConflict, InvalidUsage, UnknownMetric
from billflow_usage.models import UsageEvent
from billflow_usage.signals import usage_recorded

pytestmark = pytest.mark.django_db


def test_records_all_in_input_order(metric):
    rows = billflow_usage.record_usage_bulk(
        [Usage("orders", f"cus_C{i}", i + 1) for i in range(5)]
        + [{"metric": "orders", "customer": "cus_D", "value": 9, "identifier": "d-1"}]
    )
    assert [row.value for row in rows] == [1, 2, 3, 4, 5, 9]
    assert all(row.pk for row in rows)
    assert UsageEvent.objects.count() == 6


def test_batches_larger_than_batch_size(metric):
    rows = billflow_usage.record_usage_bulk(
        (Usage("orders", "cus_A1", identifier=f"b-{i}") for i in range(25)), batch_size=10
    )
    assert len(rows) == 25
    assert UsageEvent.objects.count() == 25


def test_one_bad_item_stores_nothing_and_names_it(metric):
    items = [Usage("orders", "cus_A1"), Usage("orders", "cus_A1", 1.5), Usage("orders", "cus_A1")]
    with pytest.raises(InvalidUsage, match=r"usage #1: value must be a whole number"):
        billflow_usage.record_usage_bulk(items)
    assert not UsageEvent.objects.exists()


def test_unknown_metric_keeps_its_type(metric):
    with pytest.raises(UnknownMetric, match="usage #0"):
        billflow_usage.record_usage_bulk([Usage("nope", "cus_A1")])


def test_bad_mapping_is_explained(metric):
    with pytest.raises(InvalidUsage, match=r"usage #0: .*unexpected keyword"):
        billflow_usage.record_usage_bulk([{"metric": "orders", "customer": "cus_A1", "qty": 2}])


def test_repeats_are_safe_and_conflicts_roll_back(metric):
    billflow_usage.record_usage("orders", "cus_A1", 2, identifier="x-1")
    rows = billflow_usage.record_usage_bulk(
        [
            Usage("orders", "cus_A1", 2, identifier="x-1"),
            Usage("orders", "cus_A1", identifier="x-2"),
        ]
    )
    assert rows[0].value == 2
    assert UsageEvent.objects.count() == 2
    with pytest.raises(IdentifierConflict, match="'x-1'"):
        billflow_usage.record_usage_bulk(
            [
                Usage("orders", "cus_A1", identifier="x-3"),
                Usage("orders", "cus_A1", 7, identifier="x-1"),
            ]
        )
    assert sorted(UsageEvent.objects.values_list("identifier", flat=True)) == ["x-1", "x-2"]


def test_conflict_within_one_call(metric):
    with pytest.raises(IdentifierConflict):
        billflow_usage.record_usage_bulk(
            [
                Usage("orders", "cus_A1", 1, identifier="y"),
                Usage("orders", "cus_A1", 2, identifier="y"),
            ]
        )
    assert not UsageEvent.objects.exists()


def test_signal_only_for_new_rows(metric):
    billflow_usage.record_usage("orders", "cus_A1", identifier="old")
    seen = []

    def receiver(sender, event, **kwargs):
        seen.append(event.identifier)

    usage_recorded.connect(receiver)
    try:
        billflow_usage.record_usage_bulk(
            [
                Usage("orders", "cus_A1", identifier="old"),
                Usage("orders", "cus_A1", identifier="new"),
            ]
        )
    finally:
        usage_recorded.disconnect(receiver)
    assert seen == ["new"]
