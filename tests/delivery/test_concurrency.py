"""DELIVERY_CONCURRENCY: several Stripe requests in flight, each request's events getting that
request's own answer, and never two v1 calls at once for one customer and meter."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.checks import run_checks
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.delivery.claim import claim_events
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure, make_due

pytestmark = pytest.mark.django_db

STREAM = "/v2/billing/meter_event_stream"
V1_EVENTS = "/v1/billing/meter_events"


def record(customers: list[str], per_customer: int) -> None:
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, 1)
        for _ in range(per_customer)
        for customer in customers
    )


def new_customers(fake: FakeStripe, count: int) -> list[str]:
    return [str(fake.create_customer()["id"]) for _ in range(count)]


def test_v2_requests_are_sent_in_parallel(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str, configure: Configure
) -> None:
    configure(METER_API="v2", DELIVERY_CONCURRENCY=5, BATCH_SIZE=1000)
    fake_stripe.faults.add("latency", latency=0.3, route=STREAM)
    record([customer], 1000)

    started = time.monotonic()
    assert deliver_pending().delivered == 1000
    elapsed = time.monotonic() - started

    assert fake_stripe.request_count(STREAM) == 10
    # Two rounds of five 0.3 s requests (0.6 s), far from ten one after another (3 s).
    assert elapsed < 1.8
    assert fake_stripe.meter_event_total("api_calls", customer) == 1000


def test_each_parallel_v2_request_gets_its_own_outcome(
    fake_stripe: FakeStripe, api_calls: Metric, configure: Configure
) -> None:
    configure(METER_API="v2", DELIVERY_CONCURRENCY=4, BATCH_SIZE=1000)
    customers = new_customers(fake_stripe, 10)
    record(customers, 100)
    fake_stripe.faults.add("status", status=503, route=STREAM, times=2)
    fake_stripe.faults.add("drop_after_processing", route=STREAM, times=1)

    first = deliver_pending()

    # Ten requests of 100 events: the three that failed leave exactly their events to retry.
    assert (first.delivered, first.retried) == (700, 300)
    retried = UsageEvent.objects.filter(status=UsageEvent.Status.PENDING)
    assert set(retried.values_list("last_error_code", flat=True)) <= {
        "http_503",
        "api_connection_error",
        "ConnectionError",
    }
    make_due()
    assert deliver_pending().delivered == 300
    assert all(fake_stripe.meter_event_total("api_calls", c) == 100 for c in customers)
    # The request whose answer was lost had been stored: its 100 events came back as
    # duplicates, which Stripe drops by identifier.
    assert fake_stripe.duplicate_identifiers_ignored == 100


def test_v1_sends_customers_in_parallel_but_each_one_call_at_a_time(
    fake_stripe: FakeStripe, api_calls: Metric, configure: Configure
) -> None:
    configure(METER_API="v1", DELIVERY_CONCURRENCY=8)
    customers = new_customers(fake_stripe, 8)
    record(customers, 3)
    fake_stripe.faults.add("latency", latency=0.1, route=V1_EVENTS)

    started = time.monotonic()
    assert deliver_pending().delivered == 24
    elapsed = time.monotonic() - started

    peaks = fake_stripe.max_concurrency_per_customer_meter
    assert {peaks[("api_calls", c)] for c in customers} == {1}
    # Eight customers side by side, three calls each (0.3 s), not 24 in a row (2.4 s).
    assert elapsed < 1.5


def test_a_concurrency_of_one_sends_one_request_at_a_time(
    fake_stripe: FakeStripe, api_calls: Metric, configure: Configure
) -> None:
    configure(METER_API="v2", DELIVERY_CONCURRENCY=1, BATCH_SIZE=1000)
    customers = new_customers(fake_stripe, 3)
    record(customers, 100)
    fake_stripe.faults.add("latency", latency=0.2, route=STREAM)

    started = time.monotonic()
    assert deliver_pending().delivered == 300

    assert time.monotonic() - started >= 0.6


@pytest.mark.parametrize(("exclusive", "second_claim"), [(True, 0), (False, 1)])
def test_only_exclusive_claims_keep_a_customer_to_one_claim(
    api_calls: Metric, customer: str, exclusive: bool, second_claim: int
) -> None:
    record([customer], 2)

    def claim() -> int:
        held = claim_events(
            using="default", now=timezone.now(), batch_size=1, lease=300, exclusive=exclusive
        )
        return len(held.events)

    assert claim() == 1
    assert claim() == second_claim


@pytest.mark.parametrize("value", [0, 65, "8", True, 2.0])
def test_a_bad_delivery_concurrency_is_reported(settings: Any, value: object) -> None:
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "DELIVERY_CONCURRENCY": value}

    errors = [m for m in run_checks() if m.id == "billflow_usage.E005"]

    assert [m.msg for m in errors] == [
        f"BILLFLOW_USAGE['DELIVERY_CONCURRENCY'] = {value!r} is malformed."
    ]
    assert "from 1 to 64" in (errors[0].hint or "")


def test_a_good_delivery_concurrency_passes(settings: Any) -> None:
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "DELIVERY_CONCURRENCY": 16}

    assert not [m for m in run_checks() if m.id.startswith("billflow_usage.E")]
