"""reverse_on_delete: deleting an object undoes what it billed, without double-sending."""

import pytest
from django.utils import timezone

from billflow_usage.models import UsageEvent
from billflow_usage.tracking.identifiers import tracker_identifier
from tests.factories import MetricFactory, OrderFactory, UsageEventFactory
from tests.testapp.models import Order
from tests.tracking.helpers import ledger, workspace_customer

Status = UsageEvent.Status


@pytest.fixture
def reversible(tracker_registry, orders):
    return tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, value=3, reverse_on_delete=True
    )


def mark_sent(**filters):
    UsageEvent.objects.filter(**filters).update(status=Status.SENT, sent_at=timezone.now())


def test_a_pending_creation_is_cancelled_instead_of_offset(reversible):
    OrderFactory().delete()

    [event] = ledger()
    assert event.status == Status.CANCELLED
    assert event.last_error_code == "source_deleted"


def test_a_sent_creation_is_offset_by_a_negative_event(reversible, serials):
    order = OrderFactory()
    pk = order.pk
    mark_sent()
    order.delete()

    sent, reversal = ledger()
    assert (sent.status, sent.value) == (Status.SENT, 3)
    assert (reversal.status, reversal.value) == (Status.PENDING, -3)
    assert reversal.customer_id == sent.customer_id
    assert reversal.source_object_id == str(pk)
    assert reversal.identifier == tracker_identifier(
        "orders",
        "testapp.order",
        pk,
        "reverse",
        "serial-2",  # the delete
        sent.customer_id,
    )


def test_a_row_a_worker_may_be_sending_is_offset_not_cancelled(reversible):
    order = OrderFactory()
    UsageEvent.objects.update(attempts=1)
    order.delete()

    assert [(e.status, e.value) for e in ledger()] == [(Status.PENDING, 3), (Status.PENDING, -3)]


def test_a_failed_row_is_cancelled_so_a_retry_cannot_bill_it(reversible):
    order = OrderFactory()
    UsageEvent.objects.update(status=Status.FAILED)
    order.delete()

    assert [e.status for e in ledger()] == [Status.CANCELLED]


def test_reversal_replaces_the_delete_action(tracker_registry, orders):
    tracker_registry.track(
        Order,
        metric="orders",
        customer=workspace_customer,
        on=("create", "delete"),
        reverse_on_delete=True,
    )
    order = OrderFactory()
    mark_sent()
    order.delete()

    assert [e.value for e in ledger()] == [1, -1]


def test_a_delta_tracker_reverses_the_net_it_billed(tracker_registry, units):
    tracker_registry.track(
        Order,
        metric="units",
        customer=workspace_customer,
        on=("create", "update"),
        delta="quantity",
        reverse_on_delete=True,
    )
    order = OrderFactory(quantity=3)
    mark_sent()
    order.quantity = 5
    order.save()  # +2, not sent yet
    order.delete()

    assert [(e.value, e.status) for e in ledger()] == [
        (3, Status.SENT),
        (2, Status.CANCELLED),
        (-3, Status.PENDING),
    ]


def test_two_reversing_trackers_of_one_metric_reverse_once(reversible, tracker_registry):
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, value=0, reverse_on_delete=True
    )
    order = OrderFactory()
    mark_sent()
    order.delete()

    assert [e.value for e in ledger() if e.status != Status.CANCELLED] == [3, 0, -3]


def test_usage_moved_between_customers_is_reversed_per_customer(reversible):
    order = OrderFactory()
    first = ledger()[0]
    UsageEventFactory(
        metric=first.metric,
        customer_id="cus_Other",
        value=2,
        identifier="moved",
        source=order,
        sent=True,
    )
    mark_sent(pk=first.pk)
    order.delete()

    reversals = {e.customer_id: e.value for e in ledger() if e.value < 0}
    assert reversals == {first.customer_id: -3, "cus_Other": -2}


@pytest.mark.parametrize(
    ("aggregation", "meter_api", "reason"),
    [
        ("last", "v1", "a last meter can't be offset by a negative event"),
        ("sum", "legacy", "legacy usage records can't be negative"),
    ],
)
def test_usage_that_cannot_be_offset_stays_billed_with_a_warning(
    tracker_registry, db, settings, caplog, aggregation, meter_api, reason
):
    MetricFactory(key="storage", aggregation=aggregation)
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "METER_API": meter_api}
    tracker_registry.track(
        Order, metric="storage", customer=workspace_customer, value=3, reverse_on_delete=True
    )
    order = OrderFactory()
    mark_sent()

    order.delete()

    assert [(e.status, e.value) for e in ledger()] == [(Status.SENT, 3)]
    assert reason in caplog.text
