"""The acceptance run: with 20% of requests failing (5xx, 429 lock timeouts, answers lost
after Stripe stored the event), the fake's totals equal the ledger's in every mode."""

from __future__ import annotations

from collections import Counter

import pytest

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure, make_due

pytestmark = pytest.mark.django_db


def add_faults(fake: FakeStripe) -> None:
    fake.faults.seed(11)
    fake.faults.add("status", status=500, rate=0.08)
    fake.faults.add("status", status=429, code="lock_timeout", rate=0.04)
    fake.faults.add("drop_after_processing", rate=0.08)


@pytest.mark.parametrize("meter_api", ["v1", "v2", "legacy"])
def test_totals_match_the_ledger_exactly_under_faults(
    fake_stripe: FakeStripe, api_calls: Metric, configure: Configure, meter_api: str
) -> None:
    configure(METER_API=meter_api, MAX_ATTEMPTS=100, BATCH_SIZE=10)
    legacy_price = fake_stripe.create_price(usage_type="metered")
    items = {}
    for _ in range(5):
        customer = str(fake_stripe.create_customer()["id"])
        subscription = fake_stripe.create_subscription(customer, legacy_price["id"])
        items[customer] = subscription["items"]["data"][0]["id"]
        SubscriptionItemLink.objects.create(
            customer_id=customer, metric=api_calls, stripe_subscription_item_id=items[customer]
        )
    customers = list(items)
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customers[n % 5], n % 4 + 1) for n in range(200)
    )
    add_faults(fake_stripe)

    while UsageEvent.objects.filter(status=UsageEvent.Status.PENDING).exists():
        make_due()
        deliver_pending()

    assert sum(fake_stripe.faults.counters.values()) >= 3  # faults really fired
    fake_stripe.faults.clear()
    assert not UsageEvent.objects.exclude(status=UsageEvent.Status.SENT).exists()
    ledger = Counter[str]()
    for customer, value in UsageEvent.objects.values_list("customer_id", "value"):
        ledger[customer] += value
    if meter_api == "legacy":
        assert fake_stripe.usage_record_totals == {items[c]: ledger[c] for c in customers}
    else:
        totals = {c: fake_stripe.meter_event_total("api_calls", c) for c in customers}
        assert totals == dict(ledger)
        sent = [e["identifier"] for e in fake_stripe.meter_events("api_calls")]
        assert len(sent) == len(set(sent)) == 200
