"""METER_API "legacy": usage records on the customer's subscription item, at an old API
version, for metered prices without a meter."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure, make_due
from tests.factories import MetricFactory

pytestmark = pytest.mark.django_db

USAGE_RECORDS = "/v1/subscription_items/*/usage_records"


@pytest.fixture(autouse=True)
def legacy(configure: Configure) -> None:
    configure(METER_API="legacy")


@pytest.fixture
def storage() -> Metric:
    return MetricFactory(key="storage_gb", event_name="storage_gb")


@pytest.fixture
def item_id(fake_stripe: FakeStripe, customer: str) -> str:
    """A subscription item on a legacy metered price (no meter)."""
    price = fake_stripe.create_price(usage_type="metered")
    subscription = fake_stripe.create_subscription(customer, price["id"])
    return str(subscription["items"]["data"][0]["id"])


def link(metric: Metric, customer: str, item_id: str) -> SubscriptionItemLink:
    return SubscriptionItemLink.objects.create(
        customer_id=customer, metric=metric, stripe_subscription_item_id=item_id
    )


def test_usage_records_are_added_to_the_customers_item(
    fake_stripe: FakeStripe, storage: Metric, customer: str, item_id: str
) -> None:
    link(storage, customer, item_id)
    moment = timezone.now() - timedelta(minutes=1)
    billflow_usage.record_usage("storage_gb", customer, 3, timestamp=moment)
    billflow_usage.record_usage("storage_gb", customer, 4, timestamp=moment + timedelta(seconds=1))

    assert deliver_pending().delivered == 2

    assert fake_stripe.usage_record_totals == {item_id: 7}
    assert fake_stripe.request_count(f"/v1/subscription_items/{item_id}/usage_records") == 2


def test_each_request_sets_the_whole_second_it_falls_in(
    fake_stripe: FakeStripe, storage: Metric, customer: str, item_id: str
) -> None:
    link(storage, customer, item_id)
    moment = timezone.now() - timedelta(minutes=1)
    for value in (3, 4):
        billflow_usage.record_usage("storage_gb", customer, value, timestamp=moment)
    assert deliver_pending().delivered == 2  # one request for the second: 7
    billflow_usage.record_usage("storage_gb", customer, 5, timestamp=moment)

    assert deliver_pending().delivered == 1  # sets the second to 3 + 4 + 5

    assert fake_stripe.usage_record_totals == {item_id: 12}
    assert fake_stripe.request_count(f"/v1/subscription_items/{item_id}/usage_records") == 2


def test_without_a_stored_item_events_wait_with_a_clear_error(
    fake_stripe: FakeStripe, storage: Metric, customer: str, item_id: str
) -> None:
    event = billflow_usage.record_usage("storage_gb", customer, 3)

    assert deliver_pending().retried == 1

    event.refresh_from_db()
    assert event.status == UsageEvent.Status.PENDING
    assert event.last_error_code == "no_subscription_item"
    assert "billflow_sync" in event.last_error_message
    assert fake_stripe.request_count("/v1/subscription_items") == 0

    link(storage, customer, item_id)  # billflow_sync found the item
    make_due()
    assert deliver_pending().delivered == 1
    assert fake_stripe.usage_record_totals == {item_id: 3}


def test_a_lost_answer_is_replayed_by_the_idempotency_key_not_counted_twice(
    fake_stripe: FakeStripe, storage: Metric, customer: str, item_id: str
) -> None:
    link(storage, customer, item_id)
    fake_stripe.faults.add("drop_after_processing", route=USAGE_RECORDS, times=1)
    billflow_usage.record_usage("storage_gb", customer, 5)

    assert deliver_pending().retried == 1
    make_due()
    assert deliver_pending().delivered == 1

    assert fake_stripe.usage_record_totals == {item_id: 5}


def test_a_price_with_a_meter_refuses_usage_records(
    fake_stripe: FakeStripe, storage: Metric, customer: str
) -> None:
    meter = fake_stripe.create_meter("storage_gb")
    price = fake_stripe.create_price(meter=meter["id"])
    subscription = fake_stripe.create_subscription(customer, price["id"])
    link(storage, customer, subscription["items"]["data"][0]["id"])
    event = billflow_usage.record_usage("storage_gb", customer, 1)

    assert deliver_pending().failed == 1

    event.refresh_from_db()
    assert "metered price without a meter" in event.last_error_message
