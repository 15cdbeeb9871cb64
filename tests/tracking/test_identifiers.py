"""Tracker identifiers are unique per installation and per change, over real HTTP: a primary
key that comes back is billed again, and two databases on one Stripe account never collide."""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.tracking.base import DELETE, UPDATE, Change
from billflow_usage.tracking.identifiers import tracker_identifier
from billflow_usage.tracking.registry import TrackerRegistry
from tests.delivery.conftest import Configure
from tests.factories import MetricFactory, OrderFactory, WorkspaceFactory
from tests.testapp.models import Order
from tests.tracking.helpers import workspace_customer


@pytest.fixture(autouse=True)
def v1(configure: Configure) -> None:
    configure(METER_API="v1")


def statuses() -> list[str]:
    return list(UsageEvent.objects.order_by("id").values_list("status", flat=True))


@pytest.mark.django_db
def test_a_primary_key_that_comes_back_is_billed_again(
    tracker_registry: TrackerRegistry, fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    tracker_registry.track(Order, metric="api_calls", customer=workspace_customer)
    workspace = WorkspaceFactory(stripe_customer_id=customer)
    Order.objects.create(pk=41, workspace=workspace)
    deliver_pending()

    Order.objects.filter(pk=41).delete()
    Order.objects.create(pk=41, workspace=workspace)  # restored from a backup, or a natural key
    deliver_pending()

    assert statuses() == ["sent", "sent"]
    assert fake_stripe.meter_event_total("api_calls", customer) == 2


def start_again_on_a_fresh_database() -> None:
    """What another tenant's database, or a staging database, is: the same schema, nothing in
    it, primary keys counted from 1 again."""
    call_command("flush", interactive=False, verbosity=0)
    ContentType.objects.clear_cache()


@pytest.mark.django_db(transaction=True)
def test_two_databases_on_one_stripe_account_bill_their_own_usage(
    tracker_registry: TrackerRegistry, fake_stripe: FakeStripe, customer: str
) -> None:
    fake_stripe.create_meter("api_calls", formula="sum")
    tracker_registry.track(Order, metric="api_calls", customer=workspace_customer)

    def first_order() -> None:
        MetricFactory(key="api_calls", event_name="api_calls")
        Order.objects.create(workspace=WorkspaceFactory(stripe_customer_id=customer))
        deliver_pending()

    first_order()
    start_again_on_a_fresh_database()
    first_order()

    assert statuses() == ["sent"]
    assert fake_stripe.meter_event_total("api_calls", customer) == 2
    assert fake_stripe.duplicate_identifier_rejections == 0


@pytest.mark.django_db
def test_the_same_change_seen_twice_is_recorded_once(
    tracker_registry: TrackerRegistry, orders: Metric
) -> None:
    """A retried dispatch: the same save handed to the tracker again."""
    tracker = tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, on=("update", "delete")
    )
    order = OrderFactory()
    for action in (UPDATE, DELETE):
        change = Change(order, action, "default", timezone.now())

        tracker.handle(change)
        tracker.handle(change)

        event = UsageEvent.objects.latest("pk")
        assert event.identifier == tracker_identifier(
            "orders", "testapp.order", order.pk, action, change.serial, event.customer_id
        )
    assert UsageEvent.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("serials")
def test_the_bulk_fallback_records_under_the_bulk_identifiers(
    default_registry: TrackerRegistry, orders: Metric
) -> None:
    """One object fails, so each goes through its tracker one by one: the others are recorded
    under the identifiers the bulk path gave them (one change, one serial, per object)."""
    good, bad = WorkspaceFactory(), WorkspaceFactory(stripe_customer_id="broken")
    billflow_usage.track(Order, metric="orders", customer=workspace_customer)

    created = billflow_usage.bulk_create_with_usage(
        Order, [Order(workspace=good), Order(workspace=good), Order(workspace=bad)]
    )

    recorded = UsageEvent.objects.filter(status="pending").order_by("pk")
    assert [event.identifier for event in recorded] == [
        tracker_identifier(
            "orders", "testapp.order", order.pk, "create", serial, good.stripe_customer_id
        )
        for order, serial in zip(created[:2], ("serial-1", "serial-2"), strict=True)
    ]


@pytest.mark.django_db
def test_two_changes_in_one_instant_are_two_events(
    tracker_registry: TrackerRegistry, orders: Metric
) -> None:
    """Under a frozen clock (a host's tests) or a coarse one, two updates that record the same
    value in the same microsecond are still two changes. Found by the model-based test."""
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, on=("create", "update")
    )
    order = OrderFactory()
    with time_machine.travel(timezone.now(), tick=False):
        for quantity in (2, 3):
            order.quantity = quantity
            order.save()
        Order.objects.filter(pk=order.pk).delete()
        OrderFactory(pk=order.pk, workspace=order.workspace)  # the same pk, the same instant

    assert list(UsageEvent.objects.values_list("value", "status")) == [(1, "pending")] * 4
