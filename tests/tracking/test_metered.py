"""Metered trackers: what a create, update or delete records, and with which identifier."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import billflow_usage
from billflow_usage.models import UsageEvent
from billflow_usage.signals import usage_recorded
from billflow_usage.tracking.identifiers import tracker_identifier
from tests.factories import CustomerFactory, MemberFactory, MetricFactory, OrderFactory
from tests.testapp.models import Member, Order
from tests.tracking.helpers import ledger, values, workspace_customer


def test_a_create_records_one_unit_for_the_customer(tracker_registry, orders, workspace, serials):
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)

    order = OrderFactory(workspace=workspace)

    [event] = ledger()
    assert (event.metric, event.customer_id, event.value) == (
        orders,
        workspace.stripe_customer_id,
        1,
    )
    assert event.source == order
    assert event.status == UsageEvent.Status.PENDING
    assert event.identifier == tracker_identifier(
        "orders", "testapp.order", order.pk, "create", "serial-1", workspace.stripe_customer_id
    )


def test_saving_an_object_again_never_records_its_creation_twice(tracker_registry, orders):
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    order = OrderFactory()

    order.quantity = 4
    order.save()
    order.save()

    assert values() == [1]


def test_updates_and_deletes_record_when_asked(tracker_registry, orders, workspace, serials):
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, on=("update", "delete")
    )
    order = OrderFactory(workspace=workspace)
    assert ledger() == []

    order.save()
    order.save()
    order.delete()

    events = ledger()
    assert [e.value for e in events] == [1, 1, 1]
    assert len({e.identifier for e in events}) == 3
    deleted = events[-1]
    assert deleted.identifier == tracker_identifier(
        "orders",
        "testapp.order",
        deleted.source_object_id,
        "delete",
        "serial-4",  # created, saved twice, then deleted: the fourth change
        workspace.stripe_customer_id,
    )


def test_on_takes_a_single_action_name(tracker_registry, orders):
    tracker_registry.track(Order, metric="orders", customer=workspace_customer, on="update")
    order = OrderFactory()
    order.save()

    assert values() == [1]


def test_when_filters_on_the_instance_and_created(tracker_registry, orders):
    seen = []

    def big_new_orders(order, created):
        seen.append(created)
        return created and order.quantity > 1

    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, on=("create", "update"),
        when=big_new_orders,
    )  # fmt: skip
    OrderFactory(quantity=1)
    big = OrderFactory(quantity=5)
    big.save()

    assert values() == [1]
    assert seen == [True, True, False]


def test_value_may_be_a_function_of_the_instance(tracker_registry, orders):
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, value=lambda o: o.quantity * 10
    )
    OrderFactory(quantity=3)

    assert values() == [30]


def test_a_value_of_none_records_nothing_and_zero_is_recorded(tracker_registry, orders):
    tracker_registry.track(
        Order,
        metric="orders",
        customer=workspace_customer,
        value=lambda o: None if o.quantity == 1 else o.quantity - 2,
    )
    OrderFactory(quantity=1)
    OrderFactory(quantity=2)

    assert values() == [0]


def test_timestamp_says_when_the_usage_happened(tracker_registry, orders):
    placed = timezone.now() - timedelta(hours=3)
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, timestamp=lambda o: placed
    )
    OrderFactory()

    assert ledger()[0].occurred_at == placed


def test_identifier_names_the_creation_and_keys_the_other_events(tracker_registry, orders, serials):
    tracker_registry.track(
        Order,
        metric="orders",
        customer=workspace_customer,
        on=("create", "delete"),
        identifier=lambda o: f"order-{o.quantity}",
    )
    OrderFactory(quantity=7).delete()

    created, deleted = ledger()
    assert created.identifier == "order-7"
    assert deleted.identifier == tracker_identifier(
        "orders",
        "testapp.order",
        "order-7",
        "delete",
        "serial-2",
        deleted.customer_id,
    )


def test_an_identifier_of_none_falls_back_to_the_pk(tracker_registry, orders, serials):
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, identifier=lambda o: None
    )
    order = OrderFactory()

    [event] = ledger()
    assert event.identifier == tracker_identifier(
        "orders",
        "testapp.order",
        order.pk,
        "create",
        "serial-1",
        event.customer_id,
    )


def test_a_customer_of_none_skips_the_object(tracker_registry, orders, caplog):
    tracker_registry.track(
        Order, metric="orders", customer=lambda o: None if o.quantity > 1 else workspace_customer(o)
    )
    OrderFactory(quantity=2)
    OrderFactory(quantity=1)

    assert values() == [1]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_customer_may_be_a_dj_stripe_customer_or_subscriber(tracker_registry, orders):
    customer = CustomerFactory()
    tracker_registry.track(Order, metric="orders", customer=lambda o: o.workspace)
    tracker_registry.track(Member, metric="orders", customer=lambda m: customer, on=("create",))
    OrderFactory(workspace=customer.subscriber)
    MemberFactory()

    assert [e.customer_id for e in ledger()] == [customer.id, customer.id]


def test_resolvers_may_be_dotted_paths(tracker_registry, orders):
    tracker_registry.track(
        "testapp.Order", metric="orders", customer="tests.tracking.helpers.workspace_customer"
    )
    order = OrderFactory()

    assert ledger()[0].customer_id == order.workspace.stripe_customer_id


def test_several_metrics_per_model_and_several_models_per_metric(tracker_registry, orders, units):
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    tracker_registry.track(Order, metric="units", customer=workspace_customer, delta="quantity")
    tracker_registry.track(Member, metric="orders", customer=workspace_customer)
    tracker_registry.track(
        Member, metric="orders", customer=workspace_customer, value=5, on=("delete",)
    )

    OrderFactory(quantity=3)
    MemberFactory().delete()

    assert [(e.metric.key, e.value) for e in ledger()] == [
        ("orders", 1),
        ("units", 3),
        ("orders", 1),
        ("orders", 5),
    ]


def test_tracker_usage_sends_usage_recorded(tracker_registry, orders):
    received = []

    def listener(sender, event, **kwargs):
        received.append((sender, event))

    usage_recorded.connect(listener)
    try:
        tracker_registry.track(Order, metric="orders", customer=workspace_customer)
        order = OrderFactory()
    finally:
        usage_recorded.disconnect(listener)

    [(sender, event)] = received
    assert sender is UsageEvent
    assert event.source == order


def test_an_inactive_metric_records_nothing(tracker_registry, db, caplog):
    MetricFactory(key="orders", active=False)
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    OrderFactory()

    assert ledger() == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_deactivating_a_metric_takes_effect_at_once(tracker_registry, orders):
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    OrderFactory()
    orders.active = False
    orders.save()
    OrderFactory()

    assert values() == [1]


def test_the_public_api_declares_on_the_project_registry(default_registry, orders):
    tracker = billflow_usage.track(Order, metric="orders", customer=workspace_customer)
    OrderFactory()

    assert default_registry.get_trackers() == [tracker]
    assert values() == [1]


@pytest.mark.parametrize("delta", [None, "quantity"])
def test_a_tracked_save_costs_one_insert_and_nothing_else(tracker_registry, orders, delta):
    """The hot path, in the host's transaction (the test's): the metric is cached, old values
    come from the loaded instance, and resolvers that run no SQL need no savepoint."""
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, on=("create", "update"), delta=delta
    )
    OrderFactory()  # warms the metric and content type caches
    order = Order.objects.select_related("workspace").get()

    with CaptureQueriesContext(connection) as create:
        Order.objects.create(workspace=order.workspace, quantity=2)
    order.quantity = 9
    with CaptureQueriesContext(connection) as update:
        order.save()

    def statements(captured):
        return [" ".join(q["sql"].split()[:3]) for q in captured]

    ledger_insert = 'INSERT INTO "billflow_usage_usageevent"'
    assert statements(create) == ['INSERT INTO "testapp_order"', ledger_insert]
    assert statements(update) == ['UPDATE "testapp_order" SET', ledger_insert]
    assert UsageEvent.objects.count() == 3


def test_two_trackers_of_one_metric_on_one_action_both_record(tracker_registry, orders, serials):
    first = tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    second = tracker_registry.track(Order, metric="orders", customer=workspace_customer, value=5)
    order = OrderFactory()

    assert (first.slot, second.slot) == (0, 1)
    assert values() == [1, 5]
    event = ledger()[1]
    assert event.identifier == tracker_identifier(
        "orders",
        "testapp.order",
        order.pk,
        "create",
        "serial-1#1",  # the second tracker's slot
        event.customer_id,
    )
