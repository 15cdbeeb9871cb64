"""Usage is written in the host's transaction: it commits and rolls back with the host's data."""

import json

import pytest
from django.core.handlers.base import BaseHandler
from django.core.management import call_command
from django.db import connection, transaction
from django.http import HttpResponse

from billflow_usage.models import SubscriptionItemLink, UsageEvent
from tests.factories import LicensedMetricFactory, MetricFactory, OrderFactory, WorkspaceFactory
from tests.testapp.models import Member, Order
from tests.tracking.helpers import (
    RolledBack,
    active_members,
    rolled_back,
    values,
    workspace_customer,
)


@pytest.fixture
def tracked(tracker_registry, orders):
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)


def test_a_rolled_back_save_records_nothing(tracked, workspace):
    rolled_back(lambda: Order.objects.create(workspace=workspace))

    assert UsageEvent.objects.count() == 0


def test_a_rolled_back_savepoint_leaves_no_usage(tracked, workspace):
    with transaction.atomic():
        Order.objects.create(workspace=workspace, quantity=1)
        rolled_back(lambda: Order.objects.create(workspace=workspace, quantity=2))
        Order.objects.create(workspace=workspace, quantity=3)

    assert UsageEvent.objects.count() == 2
    kept = set(Order.objects.values_list("pk", flat=True))
    assert {int(e.source_object_id) for e in UsageEvent.objects.all()} == kept


def test_nested_atomic_blocks_commit_together(tracked, workspace):
    with transaction.atomic(), transaction.atomic(), transaction.atomic():
        Order.objects.create(workspace=workspace)

    assert values() == [1]


def test_loaddata_records_nothing(tracker_registry, orders, units, workspace, tmp_path):
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, on=("create", "update")
    )
    tracker_registry.track(Order, metric="units", customer=workspace_customer, delta="quantity")
    fixture = tmp_path / "orders.json"
    rows = [
        {
            "model": "testapp.order",
            "pk": 900 + n,
            "fields": {"workspace": workspace.pk, "quantity": n},
        }
        for n in (1, 2)
    ]
    fixture.write_text(json.dumps(rows))

    call_command("loaddata", str(fixture), verbosity=0)
    call_command("loaddata", str(fixture), verbosity=0)  # the same rows again: updates

    assert Order.objects.count() == 2
    assert UsageEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_atomic_requests_commit_usage_and_seats_with_the_view(tracker_registry, monkeypatch, rf):
    """What ``ATOMIC_REQUESTS`` does: the view runs in one transaction, really committed."""
    MetricFactory(key="orders")
    LicensedMetricFactory(key="seats")
    workspace = WorkspaceFactory()
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    tracker_registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)

    def view(request):
        Order.objects.create(workspace=workspace)
        Member.objects.create(workspace=workspace, name="new")
        assert transaction.get_connection().in_atomic_block
        if "fail" in request.GET:
            raise RolledBack
        return HttpResponse()

    atomic_view = BaseHandler().make_view_atomic(view)
    with pytest.raises(RolledBack):
        atomic_view(rf.get("/?fail"))
    assert (Order.objects.count(), UsageEvent.objects.count()) == (0, 0)
    assert not SubscriptionItemLink.objects.exists()

    atomic_view(rf.get("/"))

    assert (Order.objects.count(), UsageEvent.objects.count()) == (1, 1)
    link = SubscriptionItemLink.objects.get()
    assert (link.quantity, link.quantity_stale) == (1, False)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_each_save_commits_its_usage(tracker_registry):
    MetricFactory(key="orders")
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    OrderFactory()

    assert values() == [1]
