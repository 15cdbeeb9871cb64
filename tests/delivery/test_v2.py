"""METER_API "v2": a meter event session and stream requests of up to 100 events."""

from __future__ import annotations

import pytest

import billflow_usage
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure, make_due

pytestmark = pytest.mark.django_db

STREAM = "/v2/billing/meter_event_stream"
SESSION = "/v2/billing/meter_event_session"


@pytest.fixture(autouse=True)
def v2(configure: Configure) -> None:
    configure(METER_API="v2")


def test_events_reach_stripe_in_batches_of_at_most_100(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, n % 7) for n in range(250)
    )

    stats = deliver_pending()

    assert stats.delivered == 250
    assert fake_stripe.meter_event_total("api_calls", customer) == sum(n % 7 for n in range(250))
    assert fake_stripe.request_count(STREAM) == 3
    assert fake_stripe.request_count(SESSION) == 1
    assert not UsageEvent.objects.exclude(status=UsageEvent.Status.SENT).exists()
    identifiers = {e["identifier"] for e in fake_stripe.meter_events("api_calls", customer)}
    assert identifiers == set(UsageEvent.objects.values_list("identifier", flat=True))


def test_one_session_serves_many_runs_and_is_renewed_when_it_expires(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    backend = StripeBackend()
    billflow_usage.record_usage("api_calls", customer, 1)
    deliver_pending(backend=backend)
    billflow_usage.record_usage("api_calls", customer, 2)
    deliver_pending(backend=backend)
    assert fake_stripe.request_count(SESSION) == 1

    fake_stripe.clock.advance(16 * 60)  # the session has expired at Stripe's end
    billflow_usage.record_usage("api_calls", customer, 4)
    assert deliver_pending(backend=backend).delivered == 1

    assert fake_stripe.request_count(SESSION) == 2
    assert fake_stripe.meter_event_total("api_calls", customer) == 7
    backend.close()


def test_a_failed_stream_request_is_retried_for_the_whole_batch(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    fake_stripe.faults.add("status", status=503, route=STREAM, times=1)
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, 1) for _ in range(5)
    )

    assert deliver_pending().retried == 5
    make_due()
    assert deliver_pending().delivered == 5
    assert fake_stripe.meter_event_total("api_calls", customer) == 5


def test_a_lost_stream_answer_is_resent_and_deduplicated_by_identifier(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    fake_stripe.faults.add("drop_after_processing", route=STREAM, times=1)
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, 2) for _ in range(3)
    )

    deliver_pending()
    make_due()
    deliver_pending()

    assert UsageEvent.objects.filter(status=UsageEvent.Status.SENT).count() == 3
    assert fake_stripe.meter_event_total("api_calls", customer) == 6
    assert fake_stripe.duplicate_identifiers_ignored == 3
