"""The in-request (on_commit) attempt stops at ``ON_COMMIT_TIMEOUT`` whatever the mode and
batch: no request starts after the deadline, each one's timeout is capped by the time left,
and rows not sent are given back, unattempted, for the workers to deliver exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure, make_due
from tests.factories import LicensedMetricFactory
from tests.fake_stripe.helpers import wait_until

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
TIMEOUT = 0.5
#: Generous: the point is "about the timeout", not 20 x the latency.
HELD_AT_MOST = 1.5
EVENTS = 20


@pytest.fixture(autouse=True)
def on_commit(configure: Configure) -> None:
    configure(DELIVERY="on_commit", ON_COMMIT_TIMEOUT=TIMEOUT)


def legacy_item(fake: FakeStripe, customer: str) -> str:
    """The customer's subscription item on a meterless metered price, linked to api_calls."""
    price = fake.create_price(usage_type="metered")
    item = str(fake.create_subscription(customer, price["id"])["items"]["data"][0]["id"])
    SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=Metric.objects.get(key="api_calls"),
        stripe_subscription_item_id=item,
    )
    return item


def commit_events(capture: Capture, customer: str) -> float:
    """Record EVENTS events (values 1..20, a second apart) in one transaction; how long the
    commit, with its delivery attempt, held the caller."""
    start = timezone.now() - timedelta(minutes=1)
    began = time.monotonic()
    with capture(execute=True):
        billflow_usage.record_usage_bulk(
            billflow_usage.Usage("api_calls", customer, n, timestamp=start + timedelta(seconds=n))
            for n in range(1, EVENTS + 1)
        )
    return time.monotonic() - began


def settle(fake: FakeStripe) -> None:
    """Let requests the client gave up on finish at the fake, then lift the latency."""
    wait_until(lambda: fake.faults.counters["latency"] == len(fake.request_log))
    fake.faults.clear()


def attempted(meter_api: str, started: int) -> int:
    """Rows a started request carried: one event each in v1 and legacy (one customer, one
    after another); in v2 a session, then one stream request with all 20."""
    if meter_api == "v2":
        return EVENTS if started == 2 else 0
    return started


@pytest.mark.parametrize("meter_api", ["v1", "v2", "legacy"])
def test_the_in_request_attempt_stops_at_its_deadline_and_workers_send_the_rest_once(
    fake_stripe: FakeStripe,
    configure: Configure,
    api_calls: Metric,
    customer: str,
    django_capture_on_commit_callbacks: Capture,
    meter_api: str,
) -> None:
    configure(METER_API=meter_api)
    item = legacy_item(fake_stripe, customer) if meter_api == "legacy" else ""
    fake_stripe.faults.add("latency", latency=0.3)

    held = commit_events(django_capture_on_commit_callbacks, customer)

    assert held < HELD_AT_MOST
    started = fake_stripe.faults.counters["latency"]
    assert started in (1, 2)  # 2, unless a loaded machine spent 0.2 s before the first
    assert UsageEvent.objects.filter(attempts__gt=0).count() == attempted(meter_api, started)
    assert not UsageEvent.objects.exclude(claim_token=None).exists()  # the rest given back
    settle(fake_stripe)
    make_due()
    deliver_pending()
    assert set(UsageEvent.objects.values_list("status", flat=True)) == {"sent"}
    total = sum(range(1, EVENTS + 1))
    if meter_api == "legacy":
        assert fake_stripe.usage_record_totals == {item: total}
    else:
        assert fake_stripe.meter_event_total("api_calls", customer) == total


def test_a_stream_request_started_near_the_deadline_is_cut_at_it(
    fake_stripe: FakeStripe,
    configure: Configure,
    api_calls: Metric,
    customer: str,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    configure(METER_API="v2")
    fake_stripe.faults.add("latency", latency=0.45)  # the session leaves 0.05 s for the stream

    held = commit_events(django_capture_on_commit_callbacks, customer)

    assert held < 0.8  # not 0.45 + 0.45
    settle(fake_stripe)
    make_due()
    deliver_pending()
    assert fake_stripe.meter_event_total("api_calls", customer) == sum(range(1, EVENTS + 1))


def test_seat_pushes_stop_at_the_deadline_too(
    fake_stripe: FakeStripe, customer: str, django_capture_on_commit_callbacks: Capture
) -> None:
    seats = LicensedMetricFactory(key="seats")
    links = []
    for _ in range(3):
        other = str(fake_stripe.create_customer()["id"])
        subscription = fake_stripe.create_subscription(other, fake_stripe.create_price()["id"], 1)
        links.append(
            SubscriptionItemLink.objects.create(
                customer_id=other,
                metric=seats,
                stripe_subscription_id=subscription["id"],
                stripe_subscription_item_id=subscription["items"]["data"][0]["id"],
            )
        )
    fake_stripe.faults.add("latency", latency=0.45)

    began = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        for link in links:
            billflow_usage.set_quantity(seats, link.customer_id, 7)
    held = time.monotonic() - began

    assert held < 0.8  # a push started before the deadline is cut at it; none starts after
    assert fake_stripe.faults.counters["latency"] in (1, 2)
    settle(fake_stripe)
    SubscriptionItemLink.objects.update(push_after=None)
    deliver_pending()
    items = [link.stripe_subscription_item_id for link in links]
    assert [fake_stripe.subscription_item(item)["quantity"] for item in items] == [7] * 3
