"""bulk_create_with_usage(): the creations bulk_create() hides from signals, recorded."""

import pytest
from django.db import transaction

import billflow_usage
from billflow_usage import ledger as ledger_module
from billflow_usage.models import SubscriptionItemLink, UsageEvent
from billflow_usage.tracking import metered
from billflow_usage.tracking.identifiers import tracker_identifier
from tests.factories import WorkspaceFactory
from tests.testapp.models import Member, Order
from tests.tracking.helpers import (
    active_members,
    ledger,
    rolled_back,
    values,
    workspace_customer,
)


@pytest.fixture
def tracked(default_registry, orders, units):
    billflow_usage.track(Order, metric="orders", customer=workspace_customer)
    billflow_usage.track(Order, metric="units", customer=workspace_customer, delta="quantity")


@pytest.fixture
def bulk_calls(monkeypatch):
    calls = []
    real = ledger_module.record_usage_bulk

    def spy(usages, **kwargs):
        usages = list(usages)
        calls.append(len(usages))
        return real(usages, **kwargs)

    monkeypatch.setattr(metered, "record_usage_bulk", spy)
    return calls


def test_creations_are_recorded_in_one_bulk_call(tracked, workspace, bulk_calls, serials):
    created = billflow_usage.bulk_create_with_usage(
        Order, [Order(workspace=workspace, quantity=n) for n in (1, 2, 3)]
    )

    assert bulk_calls == [6]
    assert sorted(values()) == [1, 1, 1, 1, 2, 3]
    by_identifier = {e.identifier: e for e in ledger()}
    for number, order in enumerate(created, start=1):  # one change per object
        expected = tracker_identifier(
            "orders",
            "testapp.order",
            order.pk,
            "create",
            f"serial-{number}",
            workspace.stripe_customer_id,
        )
        assert by_identifier[expected].source == order


def test_the_identifiers_are_made_as_the_post_save_path_makes_them(tracked, workspace, serials):
    [bulk] = billflow_usage.bulk_create_with_usage(Order, [Order(workspace=workspace)])
    single = Order.objects.create(workspace=workspace)

    for order, serial in ((bulk, "serial-1"), (single, "serial-2")):
        for key in ("orders", "units"):
            event = UsageEvent.objects.get(source_object_id=str(order.pk), metric__key=key)
            assert event.identifier == tracker_identifier(
                key, "testapp.order", order.pk, "create", serial, workspace.stripe_customer_id
            )


def test_saving_a_bulk_created_object_later_records_nothing_more(tracked, workspace):
    [order] = billflow_usage.bulk_create_with_usage(Order, [Order(workspace=workspace, quantity=2)])
    order.save()
    order.quantity = 5
    order.save()  # the delta tracker has the bulk-created value to compare with

    assert sorted(values()) == [1, 2]


def test_a_queryset_or_manager_may_be_given(tracked, workspace):
    billflow_usage.bulk_create_with_usage(Order.objects, [Order(workspace=workspace)])
    billflow_usage.bulk_create_with_usage(Order.objects.all(), [Order(workspace=workspace)])

    assert UsageEvent.objects.filter(metric__key="orders").count() == 2


def test_a_failing_object_is_kept_as_failed_and_the_others_recorded(default_registry, orders):
    good, bad = WorkspaceFactory(), WorkspaceFactory(stripe_customer_id="broken")
    billflow_usage.track(Order, metric="orders", customer=workspace_customer)

    billflow_usage.bulk_create_with_usage(Order, [Order(workspace=good), Order(workspace=bad)])

    assert sorted((e.status, e.customer_id) for e in ledger()) == [
        ("failed", "cus_unresolved"),
        ("pending", good.stripe_customer_id),
    ]


def test_seat_trackers_recount_once_after_commit(
    default_registry, seats, workspace, django_capture_on_commit_callbacks
):
    billflow_usage.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )

    with django_capture_on_commit_callbacks(execute=True):
        billflow_usage.bulk_create_with_usage(
            Member, [Member(workspace=workspace, name=str(n)) for n in range(50)]
        )

    link = SubscriptionItemLink.objects.get()
    assert (link.quantity, link.quantity_version) == (50, 1)


def test_rolled_back_with_the_caller(tracked, workspace):
    rolled_back(lambda: billflow_usage.bulk_create_with_usage(Order, [Order(workspace=workspace)]))

    assert (Order.objects.count(), UsageEvent.objects.count()) == (0, 0)


def test_tracking_disabled_creates_without_usage(tracked, workspace):
    with billflow_usage.tracking_disabled():
        billflow_usage.bulk_create_with_usage(Order, [Order(workspace=workspace)])

    assert (Order.objects.count(), UsageEvent.objects.count()) == (1, 0)


@pytest.mark.parametrize("option", ["ignore_conflicts", "update_conflicts"])
def test_conflict_options_are_refused(tracked, workspace, option):
    with pytest.raises(TypeError, match=option), transaction.atomic():
        billflow_usage.bulk_create_with_usage(Order, [Order(workspace=workspace)], **{option: True})

    assert not Order.objects.exists()
