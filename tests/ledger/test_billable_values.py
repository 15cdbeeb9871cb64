"""Values Stripe can't bill as asked are refused when recorded, and a row that can't be sent
in legacy mode is never sent: count meters count one per event, usage records can be neither
negative nor in the future."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.exceptions import InvalidUsage
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure
from tests.factories import MetricFactory

pytestmark = pytest.mark.django_db

USAGE_RECORDS = "/v1/subscription_items/*/usage_records"


@pytest.fixture
def logins(fake_stripe: FakeStripe) -> Metric:
    """A count metric with its meter in the fake."""
    fake_stripe.create_meter("logins", formula="count")
    return MetricFactory(key="logins", event_name="logins", aggregation=Metric.Aggregation.COUNT)


def ledger_values() -> list[int]:
    return list(UsageEvent.objects.order_by("id").values_list("value", flat=True))


# -- count meters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "can't take back usage with a negative event: cancel the event instead"),
        (0, "counts this event as one"),
        (5, "counts this event as one"),
    ],
)
def test_a_count_metric_takes_one_event_at_a_time(
    configure: Configure, logins: Metric, customer: str, value: int, message: str
) -> None:
    billflow_usage.record_usage(logins, customer)

    with pytest.raises(InvalidUsage, match=message):
        billflow_usage.record_usage(logins, customer, value)
    with pytest.raises(InvalidUsage, match=f"usage #1: .*{message}"):
        billflow_usage.record_usage_bulk(
            [billflow_usage.Usage(logins, customer), billflow_usage.Usage(logins, customer, value)]
        )

    assert ledger_values() == [1]


# -- legacy usage records -------------------------------------------------------------------


def test_legacy_mode_refuses_negative_and_future_usage_when_recorded(
    configure: Configure, api_calls: Metric, customer: str
) -> None:
    configure(METER_API="legacy")
    soon = timezone.now() + timedelta(minutes=2)

    with pytest.raises(InvalidUsage, match="usage records can't be negative"):
        billflow_usage.record_usage(api_calls, customer, -3)
    with pytest.raises(InvalidUsage, match="usage records can't be in the future"):
        billflow_usage.record_usage(api_calls, customer, 3, timestamp=soon)

    assert not UsageEvent.objects.exists()
    configure(METER_API="v1")  # meter events take both
    billflow_usage.record_usage(api_calls, customer, -3)
    billflow_usage.record_usage(api_calls, customer, 3, timestamp=soon)
    assert ledger_values() == [-3, 3]


@pytest.fixture
def legacy_item(fake_stripe: FakeStripe, api_calls: Metric, customer: str) -> str:
    """The customer's subscription item on a meter-less metered price, stored."""
    price = fake_stripe.create_price(usage_type="metered")
    subscription = fake_stripe.create_subscription(customer, price["id"])
    item_id = str(subscription["items"]["data"][0]["id"])
    SubscriptionItemLink.objects.create(
        customer_id=customer, metric=api_calls, stripe_subscription_item_id=item_id
    )
    return item_id


def test_a_negative_row_recorded_before_switching_to_legacy_fails_without_a_request(
    configure: Configure, fake_stripe: FakeStripe, legacy_item: str, customer: str
) -> None:
    configure(METER_API="v1")
    correction = billflow_usage.record_usage("api_calls", customer, -3)
    configure(METER_API="legacy")

    assert deliver_pending().failed == 1

    correction.refresh_from_db()
    assert (correction.status, correction.last_error_code) == ("failed", "usage_record_negative")
    assert "Legacy usage records can't be negative" in correction.last_error_message
    assert "credit note" in correction.last_error_message
    assert fake_stripe.request_count(USAGE_RECORDS) == 0


def test_a_future_row_waits_in_legacy_mode_until_its_time_has_come(
    configure: Configure, fake_stripe: FakeStripe, legacy_item: str, customer: str
) -> None:
    configure(METER_API="v1")
    early = billflow_usage.record_usage(
        "api_calls", customer, 3, timestamp=timezone.now() + timedelta(minutes=4)
    )
    configure(METER_API="legacy")

    assert deliver_pending().retried == 1

    early.refresh_from_db()
    assert (early.status, early.last_error_code) == ("pending", "usage_record_in_future")
    assert fake_stripe.request_count(USAGE_RECORDS) == 0
