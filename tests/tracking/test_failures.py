"""A failing tracker never breaks the host's save, and never loses the usage silently."""

import logging

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

import billflow_usage
from billflow_usage.models import UsageEvent
from tests.factories import OrderFactory, WorkspaceFactory
from tests.testapp.models import Order, Workspace
from tests.tracking.helpers import ledger, rolled_back, workspace_customer


class ResolverBroke(Exception):
    pass


def broken_customer(order):
    raise ResolverBroke("the CRM is down")


def failed_rows():
    return list(UsageEvent.objects.filter(status=UsageEvent.Status.FAILED))


def test_a_raising_resolver_keeps_a_failed_row_and_the_save(tracker_registry, orders, caplog):
    tracker_registry.track(Order, metric="orders", customer=broken_customer)

    with caplog.at_level(logging.ERROR, logger="billflow_usage"):
        order = OrderFactory()

    assert Order.objects.filter(pk=order.pk).exists()
    [row] = ledger()
    assert row.status == UsageEvent.Status.FAILED
    assert row.last_error_code == "tracker_error"
    assert "ResolverBroke: the CRM is down" in row.last_error_message
    assert "Once the cause is fixed, record it with record_usage(" in row.last_error_message
    assert (row.source, row.metric, row.value) == (order, orders, 1)
    assert row.customer_id == "cus_unresolved"
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.name.startswith("billflow_usage")
    assert "ResolverBroke: the CRM is down" in record.getMessage()


@pytest.mark.parametrize(
    ("options", "error", "customer_known"),
    [
        ({"customer": lambda o: "not-a-customer"}, "InvalidUsage", False),
        ({"value": lambda o: 1.5}, "InvalidUsage", True),
        ({"value": lambda o: 1 / 0}, "ZeroDivisionError", False),
        ({"timestamp": lambda o: timezone.now().replace(tzinfo=None)}, "naive", True),
        ({"customer": 42}, "TypeError", False),
        ({"customer": "tests.tracking.nowhere.customer"}, "ModuleNotFoundError", False),
    ],
)
def test_invalid_resolver_results_are_kept_as_failed_rows(
    tracker_registry, orders, options, error, customer_known
):
    tracker_registry.track(Order, metric="orders", **{"customer": workspace_customer, **options})
    order = OrderFactory()

    [row] = failed_rows()
    assert error in row.last_error_message
    known = row.customer_id == order.workspace.stripe_customer_id
    assert known is customer_known
    assert row.value in (0, 1)


def test_one_failing_tracker_does_not_stop_another(tracker_registry, orders):
    tracker_registry.track(Order, metric="orders", customer=broken_customer, value=7)
    tracker_registry.track(Order, metric="orders", customer=workspace_customer, value=2)
    OrderFactory()

    assert sorted((e.status, e.value) for e in ledger()) == [("failed", 7), ("pending", 2)]


def test_a_database_error_in_a_resolver_leaves_the_host_transaction_usable(
    tracker_registry, orders
):
    """On PostgreSQL a failed statement aborts the transaction unless it ran in a savepoint."""

    def customer_from_a_missing_table(order):
        with connection.cursor() as cursor:
            cursor.execute("SELECT customer FROM no_such_table")
        return "cus_Never"

    tracker_registry.track(Order, metric="orders", customer=customer_from_a_missing_table)
    workspace = WorkspaceFactory()
    with transaction.atomic():
        order = Order.objects.create(workspace=workspace)
        Workspace.objects.create(name="after the failure")  # the transaction still works

    assert Order.objects.filter(pk=order.pk).exists()
    [row] = failed_rows()
    assert row.source == order


def test_an_unknown_metric_keeps_a_failed_row_without_a_metric(tracker_registry, db, caplog):
    """The usage is kept, with the key that is missing and what to do, as for a raising
    resolver; the row has no metric to point at, and is never sent."""
    tracker_registry.track(Order, metric="no-such-metric", customer=workspace_customer, value=3)

    with caplog.at_level(logging.ERROR, logger="billflow_usage"):
        order = OrderFactory()

    assert Order.objects.filter(pk=order.pk).exists()
    [row] = ledger()
    assert (row.status, row.last_error_code) == (UsageEvent.Status.FAILED, "unknown_metric")
    assert (row.metric, row.value, row.source) == (None, 3, order)
    assert row.customer_id == order.workspace.stripe_customer_id
    assert "No metric with key 'no-such-metric'" in row.last_error_message
    assert "create it (admin or data migration)" in row.last_error_message
    assert "No metric with key 'no-such-metric'" in caplog.text


def test_a_metric_that_doesn_t_exist_keeps_nothing_when_nothing_was_to_be_recorded(
    tracker_registry, db
):
    tracker_registry.track(Order, metric="no-such-metric", customer=lambda order: None)
    OrderFactory()

    assert ledger() == []


def test_a_failed_row_is_rolled_back_with_the_host(tracker_registry, orders, workspace):
    tracker_registry.track(Order, metric="orders", customer=broken_customer)

    rolled_back(lambda: Order.objects.create(workspace=workspace))

    assert ledger() == []


def test_a_database_error_writing_the_ledger_fails_the_host_save(tracker_registry, orders):
    """The ledger INSERT runs unguarded: if the database refuses it, the save fails with it
    rather than committing an order whose usage is lost."""
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    workspace = WorkspaceFactory()
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute(f'ALTER TABLE "{UsageEvent._meta.db_table}" RENAME TO "bfu_ledger_away"')

    with pytest.raises(DatabaseError), transaction.atomic():
        Order.objects.create(workspace=workspace)

    assert not Order.objects.exists()


def test_a_repeated_identifier_is_a_no_op(tracker_registry, orders, workspace):
    """The order's own idempotency key was recorded already, by hand: the tracker's INSERT
    finds it taken and records nothing, without a savepoint or an error."""
    tracker_registry.track(
        Order,
        metric="orders",
        customer=workspace_customer,
        identifier=lambda order: f"order-{order.quantity}",
        timestamp=lambda order: None,
    )
    recorded = billflow_usage.record_usage(
        "orders", workspace.stripe_customer_id, identifier="order-7"
    )

    order = Order.objects.create(workspace=workspace, quantity=7)

    assert Order.objects.filter(pk=order.pk).exists()
    assert ledger() == [recorded]
