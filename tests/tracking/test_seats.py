"""Seat trackers: one recompute per customer and metric after the transaction commits."""

import logging
import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

import billflow_usage
from billflow_usage.models import SubscriptionItemLink
from billflow_usage.tracking import seats as seats_module
from billflow_usage.tracking.seats import refresh_stale_quantities
from tests.factories import LicensedMetricFactory, MemberFactory, WorkspaceFactory
from tests.testapp.models import Member
from tests.tracking.helpers import active_members, rolled_back, workspace_customer


@pytest.fixture
def seat_tracker(tracker_registry, seats):
    return tracker_registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )


@pytest.fixture
def stores(monkeypatch):
    """Every set_quantity() call the seat trackers make."""
    calls = []
    real = seats_module.set_quantity

    def spy(metric, customer, quantity):
        calls.append((customer, quantity))
        return real(metric, customer, quantity)

    monkeypatch.setattr(seats_module, "set_quantity", spy)
    return calls


def link_of(workspace):
    return SubscriptionItemLink.objects.get(customer_id=workspace.stripe_customer_id)


def test_a_thousand_changes_in_one_transaction_store_once(
    seat_tracker, workspace, stores, django_capture_on_commit_callbacks
):
    members = Member.objects.bulk_create(  # untracked: bulk_create sends no signals
        [Member(workspace=workspace, name=f"m{n}") for n in range(1000)]
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            for member in members:  # 1,000 tracked saves
                member.name += "!"
                member.save()
        flags = [q for q in queries if q["sql"].startswith('UPDATE "billflow_usage_subscr')]
        assert len(flags) == 1  # the stale flag, once per customer and metric
        assert link_of(workspace).quantity_stale

    assert len(callbacks) == 1
    assert stores == [(workspace.stripe_customer_id, 1000)]
    link = link_of(workspace)
    assert (link.quantity, link.quantity_version, link.quantity_stale) == (1000, 1, False)


def test_a_member_added_and_another_removed_net_out(
    seat_tracker, workspace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        leaving = MemberFactory(workspace=workspace)
        MemberFactory(workspace=workspace)
    assert link_of(workspace).quantity_version == 1

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        MemberFactory(workspace=workspace)
        leaving.delete()

    link = link_of(workspace)
    assert (link.quantity, link.quantity_version, link.quantity_stale) == (2, 1, False)


def test_deactivating_a_member_recounts(
    seat_tracker, workspace, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        member = MemberFactory(workspace=workspace)
        MemberFactory(workspace=workspace)
        member.active = False
        member.save()

    assert link_of(workspace).quantity == 1


def test_a_member_moving_recounts_both_workspaces(seat_tracker, django_capture_on_commit_callbacks):
    old, new = WorkspaceFactory(), WorkspaceFactory()
    with django_capture_on_commit_callbacks(execute=True):
        MemberFactory(workspace=old)
        MemberFactory(workspace=old)
    member = Member.objects.first()

    with django_capture_on_commit_callbacks(execute=True):
        member.workspace = new
        member.save()

    assert (link_of(old).quantity, link_of(new).quantity) == (1, 1)


def test_a_rolled_back_savepoint_does_not_lose_the_recount(
    seat_tracker, workspace, django_capture_on_commit_callbacks
):
    """The flush registered inside the savepoint is dropped with it; a later change
    must schedule its own."""
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        rolled_back(lambda: MemberFactory(workspace=workspace))
        MemberFactory(workspace=workspace)

    link = link_of(workspace)
    assert (link.quantity, link.quantity_stale) == (1, False)


def test_a_crash_before_the_recount_is_repaired(seat_tracker, workspace, tracker_registry):
    with transaction.atomic():  # committed (in the test's transaction), never recounted
        MemberFactory(workspace=workspace)
        MemberFactory(workspace=workspace)
    link = link_of(workspace)
    assert (link.quantity, link.quantity_stale) == (None, True)

    assert refresh_stale_quantities(tracker_registry) == 1

    link = link_of(workspace)
    assert (link.quantity, link.quantity_stale) == (2, False)
    assert refresh_stale_quantities(tracker_registry) == 0


def test_refresh_uses_the_project_registry_by_default(default_registry, seats, workspace):
    billflow_usage.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )
    with transaction.atomic():
        MemberFactory(workspace=workspace)

    assert refresh_stale_quantities() == 1
    assert link_of(workspace).quantity == 1


def test_a_stale_metric_without_a_tracker_is_left_and_logged(tracker_registry, seats, caplog):
    link = SubscriptionItemLink.objects.create(
        customer_id="cus_Orphan", metric=seats, quantity_stale=True
    )

    assert refresh_stale_quantities(tracker_registry) == 0
    link.refresh_from_db()
    assert link.quantity_stale
    assert "no track_quantity() tracker" in caplog.text


def test_a_failing_quantity_function_leaves_the_flag(
    tracker_registry, seats, workspace, caplog, django_capture_on_commit_callbacks
):
    def broken(customer_id):
        raise RuntimeError("count service down")

    tracker_registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=broken
    )
    with (
        caplog.at_level(logging.ERROR, logger="billflow_usage"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        member = MemberFactory(workspace=workspace)

    assert Member.objects.filter(pk=member.pk).exists()
    assert link_of(workspace).quantity_stale
    assert "count service down" in caplog.text


def test_a_failing_customer_resolver_never_breaks_the_save(
    tracker_registry, seats, caplog, django_capture_on_commit_callbacks
):
    tracker_registry.track_quantity(
        Member, metric="seats", customer=lambda m: "bogus", quantity=active_members
    )
    with django_capture_on_commit_callbacks(execute=True):
        member = MemberFactory()

    assert Member.objects.filter(pk=member.pk).exists()
    assert not SubscriptionItemLink.objects.exists()
    assert "could not mark the customer" in caplog.text


def test_a_customer_of_none_is_skipped(tracker_registry, seats, django_capture_on_commit_callbacks):
    tracker_registry.track_quantity(
        Member, metric="seats", customer=lambda m: None, quantity=active_members
    )
    with django_capture_on_commit_callbacks(execute=True):
        MemberFactory()

    assert not SubscriptionItemLink.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_recount_is_immediate(tracker_registry):
    LicensedMetricFactory(key="seats")
    workspace = WorkspaceFactory()
    tracker_registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )
    MemberFactory(workspace=workspace)

    link = link_of(workspace)
    assert (link.quantity, link.quantity_stale) == (1, False)


@pytest.mark.django_db(transaction=True)
def test_concurrent_transactions_end_with_the_true_count(tracker_registry, on_postgresql):
    """Two transactions race to create the link and recount; the last recount wins."""
    LicensedMetricFactory(key="seats")
    workspace = WorkspaceFactory()
    tracker_registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )
    start = threading.Barrier(4)
    errors = []

    def add_members():
        try:
            start.wait(10)
            for _ in range(5):
                with transaction.atomic():
                    Member.objects.create(workspace=workspace, name="racer")
        except Exception as exc:  # reported below, on the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=add_members) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    link = link_of(workspace)
    assert (link.quantity, link.quantity_stale) == (20, False)
