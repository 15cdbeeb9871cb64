"""Stripe stores a POST's first answer under its idempotency key for 24 hours, 500s included,
and replays it to every retry with that key. No call may reuse a key across attempts where a
stored 500 would block it for a day, and none may double-bill when the 500 came after the
change took effect (the fake's ``stored_error`` / ``stored_error_after_effect`` faults)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.backends.base import Cancellation, Outcome
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure, make_due
from tests.factories import LicensedMetricFactory, MetricFactory

pytestmark = pytest.mark.django_db

STORED = ["stored_error", "stored_error_after_effect"]
METER_EVENTS = {"v1": "/v1/billing/meter_events", "v2": "/v2/billing/meter_event_stream"}
USAGE_RECORDS = "/v1/subscription_items/*/usage_records"


def retry_until_settled(rounds: int = 4) -> None:
    """A few worker rounds, each after the backoff."""
    for _ in range(rounds):
        make_due()
        deliver_pending()


def statuses() -> set[str]:
    return set(UsageEvent.objects.values_list("status", flat=True))


@pytest.mark.parametrize("fault", STORED)
@pytest.mark.parametrize("meter_api", ["v1", "v2"])
def test_meter_events_use_a_new_key_per_attempt_and_their_identifier_dedupes(
    fake_stripe: FakeStripe,
    configure: Configure,
    api_calls: Metric,
    customer: str,
    meter_api: str,
    fault: str,
) -> None:
    configure(METER_API=meter_api)
    fake_stripe.faults.add(fault, route=METER_EVENTS[meter_api], times=1)
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, value) for value in (3, 4)
    )

    assert deliver_pending().retried >= 1
    retry_until_settled()

    assert statuses() == {"sent"}
    assert fake_stripe.meter_event_total("api_calls", customer) == 7


@pytest.mark.parametrize("fault", STORED)
def test_seat_quantities_are_absolute_and_use_a_new_key_per_attempt(
    fake_stripe: FakeStripe, customer: str, fault: str
) -> None:
    subscription = fake_stripe.create_subscription(customer, fake_stripe.create_price()["id"], 1)
    item = subscription["items"]["data"][0]["id"]
    link = SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=LicensedMetricFactory(key="seats"),
        stripe_subscription_id=subscription["id"],
        stripe_subscription_item_id=item,
    )
    billflow_usage.set_quantity(link.metric, customer, 6)
    fake_stripe.faults.add(fault, route=f"/v1/subscription_items/{item}", times=1)

    deliver_pending()
    SubscriptionItemLink.objects.update(push_after=None)
    deliver_pending()

    link.refresh_from_db()
    assert link.quantity_in_sync
    assert fake_stripe.subscription_item(item)["quantity"] == 6


@pytest.fixture
def legacy_item(fake_stripe: FakeStripe, configure: Configure, customer: str) -> str:
    """METER_API legacy, and the customer's item on a meterless metered price, linked."""
    configure(METER_API="legacy")
    price = fake_stripe.create_price(usage_type="metered")
    item = str(fake_stripe.create_subscription(customer, price["id"])["items"]["data"][0]["id"])
    SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=MetricFactory(key="storage_gb", event_name="storage_gb"),
        stripe_subscription_item_id=item,
    )
    return item


@pytest.mark.parametrize("fault", STORED)
def test_a_stored_500_never_blocks_a_usage_record_nor_counts_it_twice(
    fake_stripe: FakeStripe, customer: str, legacy_item: str, fault: str
) -> None:
    fake_stripe.faults.add(fault, route=USAGE_RECORDS, times=1)
    billflow_usage.record_usage("storage_gb", customer, 5)

    assert deliver_pending().retried == 1
    retry_until_settled()

    assert statuses() == {"sent"}
    assert fake_stripe.usage_record_totals == {legacy_item: 5}


def test_usage_records_of_one_second_survive_any_mix_of_stored_500s_and_lost_answers(
    fake_stripe: FakeStripe, customer: str, legacy_item: str
) -> None:
    moment = timezone.now() - timedelta(minutes=5)
    later = moment + timedelta(seconds=1)
    for value, at in ((1, moment), (2, moment), (4, later)):
        billflow_usage.record_usage("storage_gb", customer, value, timestamp=at)
    fake_stripe.faults.add("stored_error_after_effect", route=USAGE_RECORDS, times=1)
    fake_stripe.faults.add("drop_after_processing", route=USAGE_RECORDS, times=1)
    deliver_pending()

    billflow_usage.record_usage("storage_gb", customer, 8, timestamp=moment)  # same second
    retry_until_settled()

    assert statuses() == {"sent"}
    assert fake_stripe.usage_record_totals == {legacy_item: 15}


@pytest.mark.parametrize("fault", STORED)
def test_meter_creation_adopts_the_meter_a_stored_500_may_have_made(
    fake_stripe: FakeStripe, fault: str
) -> None:
    backend = StripeBackend()
    fake_stripe.faults.add(fault, route="/v1/billing/meters", method="POST", times=1)

    try:
        first = backend.create_meter(event_name="exports", formula="sum", display_name="Exports")
    except Exception:  # only when the 500 came without effect: nothing to adopt yet
        assert fault == "stored_error"
        first = backend.create_meter(event_name="exports", formula="sum", display_name="Exports")

    meters = [m for m in backend.list_meters() if m.event_name == "exports"]
    assert [m.id for m in meters] == [first.id]
    again = backend.create_meter(event_name="exports", formula="sum", display_name="Exports")
    assert again.id == first.id  # "already exists": the one Stripe has
    backend.close()


@pytest.mark.parametrize("fault", STORED)
def test_a_cancellation_is_retried_under_a_new_key_and_already_cancelled_counts(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str, fault: str
) -> None:
    configure(METER_API="v1")
    event = billflow_usage.record_usage("api_calls", customer, 9)
    deliver_pending()
    backend = StripeBackend()
    fake_stripe.faults.add(fault, route="/v1/billing/meter_event_adjustments", times=1)
    cancellation = Cancellation("api_calls", event.identifier)

    first = backend.cancel_meter_event(cancellation)
    again = backend.cancel_meter_event(cancellation)

    assert first.outcome == Outcome.RETRY
    assert again.outcome == Outcome.DELIVERED
    assert fake_stripe.meter_event_total("api_calls", customer) == 0
    backend.close()
