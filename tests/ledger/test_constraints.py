"""The database itself refuses bad states, whatever code writes the rows."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from billflow_usage.models import DeliveryGroup, Metric, SubscriptionItemLink, UsageEvent
from tests.factories import LicensedMetricFactory, MetricFactory, UsageEventFactory

pytestmark = pytest.mark.django_db


def assert_refused(action):
    """The write must fail in the database; a savepoint keeps the test's transaction usable."""
    with pytest.raises(IntegrityError), transaction.atomic():
        action()


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "lost"},
        {"value": 10**15},
        {"value": -(10**15)},
        {"customer_id": "acct_1"},
        {"identifier": ""},
        {"status": "sent", "sent_at": None},
    ],
)
def test_usage_event_constraints(metric, changes):
    event = UsageEventFactory(metric=metric)
    assert_refused(lambda: UsageEvent.objects.filter(pk=event.pk).update(**changes))


def test_identifier_unique(metric):
    UsageEventFactory(metric=metric, identifier="same")
    assert_refused(lambda: UsageEventFactory(metric=metric, identifier="same"))


def test_whole_numbers_only_at_database_level(metric):
    event = UsageEventFactory(metric=metric, value=3)
    event.refresh_from_db()
    assert isinstance(event.value, int)


def test_sent_row_with_time_is_fine(metric):
    event = UsageEventFactory(metric=metric)
    UsageEvent.objects.filter(pk=event.pk).update(status="sent", sent_at=timezone.now())


def test_one_active_link_per_customer_and_metric(db):
    seats = LicensedMetricFactory()
    SubscriptionItemLink.objects.create(customer_id="cus_A", metric=seats)
    assert_refused(lambda: SubscriptionItemLink.objects.create(customer_id="cus_A", metric=seats))
    SubscriptionItemLink.objects.create(customer_id="cus_A", metric=seats, active=False)
    SubscriptionItemLink.objects.create(customer_id="cus_A", metric=seats, active=False)


def test_one_active_link_per_subscription_item(db):
    first, second = LicensedMetricFactory(), LicensedMetricFactory()
    SubscriptionItemLink.objects.create(
        customer_id="cus_A", metric=first, stripe_subscription_item_id="si_1"
    )
    assert_refused(
        lambda: SubscriptionItemLink.objects.create(
            customer_id="cus_A", metric=second, stripe_subscription_item_id="si_1"
        )
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"customer_id": "cu_A"},
        {"stripe_subscription_item_id": "sub_1"},
        {"quantity": -1},
        {"synced_version": 5},
    ],
)
def test_link_constraints(db, changes):
    link = SubscriptionItemLink.objects.create(customer_id="cus_A", metric=LicensedMetricFactory())
    assert_refused(lambda: SubscriptionItemLink.objects.filter(pk=link.pk).update(**changes))


@pytest.mark.parametrize(
    "changes",
    [{"kind": "prepaid"}, {"aggregation": "max"}, {"proration_behavior": "sometimes"}],
)
def test_metric_constraints(db, changes):
    metric = MetricFactory()
    assert_refused(lambda: Metric.objects.filter(pk=metric.pk).update(**changes))


def test_metric_event_name_defaults_to_key_and_is_unique(db):
    metric = Metric.objects.create(key="api-calls")
    assert metric.event_name == "api-calls"
    assert_refused(lambda: Metric.objects.create(key="calls", event_name="api-calls"))


@pytest.mark.parametrize(
    ("event_name", "sent_as"), [("", "api-calls"), ("api_calls_v2", "api_calls_v2")]
)
def test_usage_goes_to_the_meter_of_the_event_name_else_of_the_key(event_name, sent_as):
    """Even on a metric never saved through ``save()``, which stores the default."""
    assert Metric(key="api-calls", event_name=event_name).meter_event_name == sent_as


def test_metric_in_use_cannot_be_deleted(metric):
    from django.db.models import ProtectedError

    UsageEventFactory(metric=metric)
    with pytest.raises(ProtectedError):
        metric.delete()


def test_group_status_constraint(metric):
    group = DeliveryGroup.objects.create(
        identifier="g-1", metric=metric, customer_id="cus_A", value=3, occurred_at=timezone.now()
    )
    assert_refused(lambda: DeliveryGroup.objects.filter(pk=group.pk).update(status="lost"))
