"""set_quantity: the desired seat count, one active link per customer and metric."""

import pytest

import billflow_usage
from billflow_usage.exceptions import InvalidUsage, UnknownMetric, WrongMetricKind
from billflow_usage.models import SubscriptionItemLink
from tests.factories import CustomerFactory, LicensedMetricFactory

pytestmark = pytest.mark.django_db


def test_creates_link_with_quantity(seats):
    link = billflow_usage.set_quantity("seats", "cus_A1", 4)
    stored = SubscriptionItemLink.objects.get()
    assert stored == link
    assert (stored.customer_id, stored.metric, stored.quantity) == ("cus_A1", seats, 4)
    assert stored.quantity_version == 1
    assert stored.stripe_subscription_item_id == ""
    assert not stored.quantity_in_sync


def test_changes_bump_version_and_repeats_do_not(seats):
    billflow_usage.set_quantity("seats", "cus_A1", 4)
    billflow_usage.set_quantity("seats", "cus_A1", 4)
    link = billflow_usage.set_quantity("seats", "cus_A1", 0)
    assert (link.quantity, link.quantity_version) == (0, 2)
    assert SubscriptionItemLink.objects.count() == 1


def test_updates_the_existing_active_link(seats):
    existing = SubscriptionItemLink.objects.create(
        customer_id="cus_A1", metric=seats, stripe_subscription_item_id="si_1", quantity=1
    )
    link = billflow_usage.set_quantity("seats", "cus_A1", 3)
    assert link.pk == existing.pk
    assert link.stripe_subscription_item_id == "si_1"


def test_accepts_dj_stripe_customer(seats):
    customer = CustomerFactory()
    assert billflow_usage.set_quantity("seats", customer.subscriber, 2).customer_id == customer.id


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        (-1, "at least 0"),
        (2.5, "fractional"),
        ("3", "whole number"),
        (True, "bool"),
        (None, "whole number"),
    ],
)
def test_bad_quantity_changes_nothing(seats, quantity, message):
    billflow_usage.set_quantity("seats", "cus_A1", 4)
    with pytest.raises(InvalidUsage, match=message):
        billflow_usage.set_quantity("seats", "cus_A1", quantity)
    link = SubscriptionItemLink.objects.get()
    assert (link.quantity, link.quantity_version) == (4, 1)


def test_metered_metric_needs_record_usage(metric):
    with pytest.raises(WrongMetricKind, match=r"'orders' is metered: use record_usage\(\)"):
        billflow_usage.set_quantity("orders", "cus_A1", 3)
    assert not SubscriptionItemLink.objects.exists()


def test_unknown_and_inactive_metrics(db):
    LicensedMetricFactory(key="gone", active=False)
    with pytest.raises(UnknownMetric, match="No metric"):
        billflow_usage.set_quantity("nope", "cus_A1", 1)
    with pytest.raises(UnknownMetric, match="inactive"):
        billflow_usage.set_quantity("gone", "cus_A1", 1)
