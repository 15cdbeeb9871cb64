"""The guard around a tracker's own code: a savepoint only once that code runs SQL, and then
the same protection as an ``atomic()`` block around it."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billflow_usage.models import UsageEvent
from billflow_usage.tracking.guard import guarded
from tests.factories import MetricFactory, OrderFactory
from tests.testapp.models import Order, Workspace
from tests.tracking.helpers import ledger


class Boom(Exception):
    pass


def statements(captured):
    return [" ".join(q["sql"].split()[:3]) for q in captured]


def savepoint_names(captured, verb):
    return [q["sql"].split()[-1] for q in captured if q["sql"].startswith(verb)]


def fail(exc: Exception) -> None:
    raise exc


def test_a_resolver_that_queries_gets_a_savepoint_around_its_work(tracker_registry, orders):
    def customer_from_the_database(order):
        return Workspace.objects.get(pk=order.workspace_id).stripe_customer_id

    tracker_registry.track(Order, metric="orders", customer=customer_from_the_database)
    order = OrderFactory()  # warms the caches

    with CaptureQueriesContext(connection) as captured:
        Order.objects.create(workspace=order.workspace)

    assert [s.split()[0] for s in statements(captured)] == [
        "INSERT",
        "SAVEPOINT",
        "SELECT",
        "RELEASE",
        "INSERT",
    ]
    assert [e.status for e in ledger()] == ["pending", "pending"]


def test_a_save_failing_before_any_sql_does_not_doom_the_host(tracker_registry, orders):
    """``save()`` marks the transaction for rollback on any error, even one raised before its
    INSERT ran; nothing reached the database, so the guard clears the mark again."""

    def customer_after_a_failed_save(order):
        Order.objects.create(workspace=order.workspace, quantity="many")

    tracker_registry.track(Order, metric="orders", customer=customer_after_a_failed_save)
    workspace = OrderFactory().workspace
    with transaction.atomic():
        order = Order.objects.create(workspace=workspace)
        Workspace.objects.create(name="the transaction still works")

    assert Order.objects.filter(pk=order.pk).exists()
    assert "expected a number but got 'many'" in ledger()[-1].last_error_message


def test_a_failure_undoes_the_work_and_its_on_commit_callbacks(
    db, django_capture_on_commit_callbacks
):
    called = []

    def work():
        transaction.on_commit(lambda: called.append("before any SQL"))
        Workspace.objects.create(name="undone")
        transaction.on_commit(lambda: called.append("after SQL"))
        raise Boom

    caught = []
    with django_capture_on_commit_callbacks(execute=True):
        transaction.on_commit(lambda: called.append("the host's"))
        assert guarded("default", work, caught.append) is None
        assert not transaction.get_rollback()

    assert [type(e) for e in caught] == [Boom]
    assert not Workspace.objects.filter(name="undone").exists()
    assert called == ["the host's"]


def test_nested_guards_open_their_savepoints_outermost_first(db):
    """The SAVEPOINT of the outer guard passes through the inner guard's hook: it must not
    make the inner one open first, or rolling the inner one back would destroy the outer."""

    def inner():
        Workspace.objects.create(name="inner")
        raise Boom

    def outer():
        guarded("default", inner, lambda exc: None)
        return Workspace.objects.create(name="outer")

    with CaptureQueriesContext(connection) as captured:
        kept = guarded("default", outer, fail)

    opened = savepoint_names(captured, "SAVEPOINT")
    assert len(opened) == 2
    assert savepoint_names(captured, "ROLLBACK TO SAVEPOINT") == [opened[1]]
    assert savepoint_names(captured, "RELEASE SAVEPOINT") == [opened[1], opened[0]]
    assert list(Workspace.objects.values_list("name", flat=True)) == [kept.name]


def test_work_without_sql_returns_its_result_without_a_savepoint(db):
    with CaptureQueriesContext(connection) as captured:
        assert guarded("default", lambda: 42, fail) == 42

    assert captured.captured_queries == []


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_work_gets_one_of_its_own(tracker_registry):
    MetricFactory(key="orders")

    def customer_from_a_missing_table(order):
        Workspace.objects.create(name="written by the resolver")
        with connection.cursor() as cursor:
            cursor.execute("SELECT customer FROM no_such_table")

    tracker_registry.track(Order, metric="orders", customer=customer_from_a_missing_table)

    order = OrderFactory()

    assert Order.objects.filter(pk=order.pk).exists()
    assert not Workspace.objects.filter(name="written by the resolver").exists()
    [row] = UsageEvent.objects.all()
    assert (row.status, row.source) == (UsageEvent.Status.FAILED, order)
