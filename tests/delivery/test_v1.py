"""METER_API "v1": one request per event, from the ledger row to the fake's totals."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.backends import get_backend
from billflow_usage.delivery import deliver_pending, sending
from billflow_usage.delivery.claim import claim_events
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.signals import delivery_failed, usage_delivered
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure, expire_claims, make_due
from tests.factories import MetricFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def v1(configure: Configure) -> None:
    configure(METER_API="v1")


def test_events_reach_stripe_under_their_identifiers(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    first = billflow_usage.record_usage("api_calls", customer, 3, identifier="order-1")
    billflow_usage.record_usage("api_calls", customer, 4)

    stats = deliver_pending()

    assert (stats.claimed, stats.delivered, stats.failed) == (2, 2, 0)
    assert fake_stripe.meter_event_total("api_calls", customer) == 7
    sent = {e["identifier"]: e for e in fake_stripe.meter_events("api_calls", customer)}
    assert sent["order-1"]["value"] == 3
    assert sent["order-1"]["timestamp"] == int(first.occurred_at.timestamp())
    first.refresh_from_db()
    assert first.status == UsageEvent.Status.SENT
    assert first.sent_at is not None
    assert first.attempts == 1
    assert first.claim_token is None


def test_a_500_is_retried_with_backoff_then_delivered(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    fake_stripe.faults.add("status", status=500, route="/v1/billing/meter_events", times=1)
    event = billflow_usage.record_usage("api_calls", customer, 5)

    assert deliver_pending().retried == 1
    event.refresh_from_db()
    assert event.status == UsageEvent.Status.PENDING
    assert event.attempts == 1
    assert event.next_attempt_at > event.created_at
    assert event.claim_token is None
    assert event.last_error_code == "http_500"
    assert deliver_pending().claimed == 0  # not due before its backoff ran out

    make_due()
    assert deliver_pending().delivered == 1
    event.refresh_from_db()
    assert (event.status, event.last_error_code) == (UsageEvent.Status.SENT, "")
    assert fake_stripe.meter_event_total("api_calls", customer) == 5


@pytest.mark.parametrize("should_retry", [None, True, False])
def test_a_429_lock_timeout_backs_off_with_stripes_code(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str, should_retry: bool | None
) -> None:
    fake_stripe.faults.add(
        "status",
        status=429,
        code="lock_timeout",
        should_retry=should_retry,
        route="/v1/billing/meter_events",
        times=1,
    )
    event = billflow_usage.record_usage("api_calls", customer, 2)

    deliver_pending()

    event.refresh_from_db()
    assert event.status == UsageEvent.Status.PENDING
    assert event.last_error_code == "lock_timeout"
    make_due()
    deliver_pending()
    assert fake_stripe.meter_event_total("api_calls", customer) == 2


def test_answer_lost_after_stripe_stored_the_event_is_not_counted_twice(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    fake_stripe.faults.add("drop_after_processing", route="/v1/billing/meter_events", times=1)
    event = billflow_usage.record_usage("api_calls", customer, 9)

    assert deliver_pending().retried == 1
    assert fake_stripe.meter_event_total("api_calls", customer) == 9
    make_due()
    assert deliver_pending().delivered == 1

    event.refresh_from_db()
    assert event.status == UsageEvent.Status.SENT
    assert fake_stripe.meter_event_total("api_calls", customer) == 9
    assert fake_stripe.duplicate_identifier_rejections == 1


def test_an_identifier_stripe_already_has_counts_as_delivered(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    event = billflow_usage.record_usage("api_calls", customer, 1, identifier="known-1")
    deliver_pending()
    UsageEvent.objects.filter(pk=event.pk).update(status=UsageEvent.Status.PENDING)

    assert deliver_pending().delivered == 1
    assert fake_stripe.meter_event_total("api_calls", customer) == 1


def test_a_permanent_error_keeps_stripes_code_and_message(
    fake_stripe: FakeStripe, db: None, customer: str, configure: Configure
) -> None:
    Metric.objects.create(key="no_meter_here", event_name="no_meter_here")
    event = billflow_usage.record_usage("no_meter_here", customer, 1)
    failures: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        failures.append(kwargs)

    delivery_failed.connect(receiver)
    try:
        assert deliver_pending().failed == 1
    finally:
        delivery_failed.disconnect(receiver)

    event.refresh_from_db()
    assert event.status == UsageEvent.Status.FAILED
    assert event.last_error_code == "no_meter"
    assert "No active meter was found for event_name 'no_meter_here'" in event.last_error_message
    assert "Stripe request req_" in event.last_error_message
    assert [f["events"] for f in failures] == [[event]]
    assert failures[0]["code"] == "no_meter"
    assert deliver_pending().claimed == 0


def test_retries_stop_after_max_attempts(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str, configure: Configure
) -> None:
    configure(MAX_ATTEMPTS=2)
    fake_stripe.faults.add("status", status=503, route="/v1/billing/meter_events")
    event = billflow_usage.record_usage("api_calls", customer, 1)

    deliver_pending()
    make_due()
    assert deliver_pending().failed == 1

    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error_code) == ("failed", 2, "http_503")
    assert event.last_error_message.startswith("Gave up after 2 attempts")


def test_usage_delivered_is_sent_with_the_rows(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    delivered: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        delivered.append(kwargs)

    event = billflow_usage.record_usage("api_calls", customer, 1)
    usage_delivered.connect(receiver)
    try:
        deliver_pending()
    finally:
        usage_delivered.disconnect(receiver)

    assert [d["events"] for d in delivered] == [[event]]
    assert delivered[0]["events"][0].status == UsageEvent.Status.SENT


def test_one_call_at_a_time_per_customer_and_meter(
    fake_stripe: FakeStripe, api_calls: Metric
) -> None:
    customers = [str(fake_stripe.create_customer()["id"]) for _ in range(4)]
    fake_stripe.faults.add("latency", latency=0.005, route="/v1/billing/meter_events")
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, 1) for customer in customers * 5
    )

    assert deliver_pending().delivered == 20

    peaks = fake_stripe.max_concurrency_per_customer_meter
    assert {customer: peaks[("api_calls", customer)] for customer in customers} == dict.fromkeys(
        customers, 1
    )
    assert all(fake_stripe.meter_event_total("api_calls", c) == 5 for c in customers)


def test_events_older_than_35_days_fail_without_being_sent(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    event = billflow_usage.record_usage("api_calls", customer, 1)
    UsageEvent.objects.filter(pk=event.pk).update(
        occurred_at=event.occurred_at - timedelta(days=36)
    )

    assert deliver_pending().failed == 1

    event.refresh_from_db()
    assert event.last_error_code == "timestamp_too_far_in_past"
    assert "more than 35 days" in event.last_error_message
    assert fake_stripe.request_count("/v1/billing/meter_events") == 0


def test_a_row_too_old_says_so_alike_whether_recording_or_delivery_found_it(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    recorded = billflow_usage.record_usage(
        "api_calls", customer, 1, timestamp=timezone.now() - timedelta(days=40)
    )
    delivered = billflow_usage.record_usage("api_calls", customer, 1)
    UsageEvent.objects.filter(pk=delivered.pk).update(
        occurred_at=delivered.occurred_at - timedelta(days=36)
    )
    assert deliver_pending().failed == 1

    def wording(event: UsageEvent) -> tuple[str, str]:
        event.refresh_from_db()
        moments = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00")
        return event.last_error_code, moments.sub("<moment>", event.last_error_message)

    assert wording(recorded) == wording(delivered)


def test_a_redo_after_a_crash_never_replays_an_answer_from_before_a_fix(
    fake_stripe: FakeStripe, customer: str
) -> None:
    """A worker died after Stripe refused the event (its meter was deactivated); the meter is
    reactivated; the worker redoing the batch must get Stripe's answer now, not the stored
    refusal replayed under the dead worker's idempotency key. Found by the model-based test."""
    meter = fake_stripe.create_meter("exports")
    MetricFactory(key="exports", event_name="exports", stripe_meter_id=meter["id"])
    row = billflow_usage.record_usage("exports", customer, 4)
    fake_stripe.deactivate_meter(meter["id"])
    held = claim_events(using="default", now=timezone.now(), batch_size=10, lease=1)
    items, _ = sending.plan(held, using="default")
    backend = get_backend()
    sending.send(items, backend, deadline=None)  # refused; then the worker dies
    fake_stripe.reactivate_meter(meter["id"])
    expire_claims()

    deliver_pending(backend=backend)
    backend.close()

    row.refresh_from_db()
    assert (row.status, row.last_error_code) == ("sent", "")
    assert fake_stripe.meter_event_total("exports", customer) == 4
