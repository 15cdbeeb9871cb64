"""Delta trackers: new minus old of a numeric field, with the old value kept on the instance."""

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from billflow_usage.tracking.identifiers import tracker_identifier
from tests.factories import OrderFactory
from tests.testapp.models import Order
from tests.tracking.helpers import ledger, values, workspace_customer


@pytest.fixture
def follow_quantity(tracker_registry, units):
    return tracker_registry.track(
        Order,
        metric="units",
        customer=workspace_customer,
        on=("create", "update", "delete"),
        delta="quantity",
    )


def test_the_ledger_follows_the_field(follow_quantity):
    order = OrderFactory(quantity=3)
    order.quantity = 5
    order.save()
    order.save()  # unchanged: nothing to record
    order.quantity = 1
    order.save()
    order.delete()

    assert values() == [3, 2, -4, -1]


def test_the_old_value_comes_from_the_loaded_instance(follow_quantity):
    OrderFactory(quantity=3)
    order = Order.objects.get()
    order.quantity = 10
    order.save()

    assert values() == [3, 7]


def test_update_identifiers_differ_per_change(follow_quantity, serials):
    order = OrderFactory(quantity=1)
    for quantity in (2, 1, 2):
        order.quantity = quantity
        order.save()

    events = ledger()
    assert [e.value for e in events] == [1, 1, -1, 1]
    assert len({e.identifier for e in events}) == 4
    update = events[1]  # the second change: the first update
    assert update.identifier == tracker_identifier(
        "units", "testapp.order", order.pk, "update", "serial-2", update.customer_id
    )


def test_update_fields_without_the_field_records_nothing(follow_quantity):
    order = OrderFactory(quantity=3)
    order.quantity = 8
    order.save(update_fields=["workspace"])
    order.save(update_fields=["quantity"])

    # The first save didn't write 8, so the second is the change from 3.
    assert values() == [3, 5]


def test_an_f_expression_is_read_back(follow_quantity):
    order = OrderFactory(quantity=3)
    order.quantity = F("quantity") + 2
    order.save()
    order.refresh_from_db()
    order.quantity = 4
    order.save()

    assert values() == [3, 2, -1]


def test_a_deferred_field_is_read_before_the_save(follow_quantity):
    order = OrderFactory(quantity=3)
    deferred = Order.objects.only("id", "workspace").get(pk=order.pk)
    deferred.quantity = 7
    deferred.save()

    assert values() == [3, 4]


def test_refresh_from_db_updates_the_old_value(follow_quantity):
    OrderFactory(quantity=3)
    mine, theirs = Order.objects.get(), Order.objects.get()
    theirs.quantity = 10
    theirs.save()

    mine.refresh_from_db()
    mine.quantity = 11
    mine.save()

    assert values() == [3, 7, 1]


def test_refresh_of_other_fields_keeps_an_unsaved_change(follow_quantity):
    order = OrderFactory(quantity=3)
    order.quantity = 6
    order.refresh_from_db(fields=["workspace"])
    order.save()

    assert values() == [3, 3]


def test_an_instance_built_for_an_existing_row(follow_quantity):
    order = OrderFactory(quantity=3)
    Order(pk=order.pk, workspace=order.workspace, quantity=9).save()

    assert values() == [3, 6]


def test_a_loaded_instance_costs_no_select(follow_quantity):
    OrderFactory(quantity=3)
    order = Order.objects.select_related("workspace").get()
    order.quantity = 4

    with CaptureQueriesContext(connection) as queries:
        order.save()

    assert not [q for q in queries if q["sql"].upper().startswith("SELECT")]
    assert values() == [3, 1]
