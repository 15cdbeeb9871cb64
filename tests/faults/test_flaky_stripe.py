"""Through a Stripe that fails 30% of requests in every way it can (5xx, 429, answers lost
after the event was stored) with random latency, every event is billed exactly once.

The default run uses 2,000 events; ``pytest -m soak tests/faults`` runs the 20,000-event size
(minutes: CI leaves it out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure
from tests.faults.exactly_once import assert_billed_exactly_once, ledger_rows

pytestmark = pytest.mark.django_db

CUSTOMERS = 50
#: Usage values cycled through, corrections (negative values) included.
VALUES = (3, 1, 4, 1, 5, 9, 2, 6, -5)
#: Aggregation mode: seconds per window; the usage is spread over the closed windows before.
WINDOW = 300
SPREAD = 2 * WINDOW
#: Short retries so a run drains in seconds; enough attempts that 30% failures never exhaust
#: them (0.3 ** 100 is nil; the default 12 would lose one event in about 2 million).
FAST_RETRIES = {"RETRY_BASE_DELAY": 0.005, "RETRY_MAX_DELAY": 0.05, "MAX_ATTEMPTS": 100}

EVENT_ROUTES = {"v1": "/v1/billing/meter_events", "v2": "/v2/billing/meter_event_stream"}
MODES = {
    "v1": {"METER_API": "v1"},
    "v2": {"METER_API": "v2"},
    "v2-aggregated": {"METER_API": "v2", "AGGREGATION_WINDOW": WINDOW},
}
SIZES = [
    pytest.param(2_000, id="2k"),
    pytest.param(20_000, id="20k", marks=pytest.mark.soak),
]


def add_faults(fake: FakeStripe, meter_api: str) -> None:
    """20% 5xx, 5% 429 (half of them lock timeouts), 5% stored-then-hung-up, 0-4 ms latency.

    The first three requests sending events fail in each way for sure: v2 sends 100 events a
    request (aggregation fewer still), too few requests for the rates alone to hit each kind.
    """
    fake.faults.seed(20)
    for kind, status in (("status", 500), ("status", 429), ("drop_after_processing", None)):
        fake.faults.add(kind, status=status, route=EVENT_ROUTES[meter_api], times=1)
    fake.faults.add("status", status=500, rate=0.10)
    fake.faults.add("status", status=503, rate=0.10)
    fake.faults.add("status", status=429, rate=0.025)
    fake.faults.add("status", status=429, code="lock_timeout", should_retry=True, rate=0.025)
    fake.faults.add("drop_after_processing", rate=0.05)
    fake.faults.add("latency", latency=(0.0, 0.004))


def closed_windows_start(now: datetime) -> datetime:
    """The start of the current aggregation window: usage before it is due at once."""
    return datetime.fromtimestamp(now.timestamp() // WINDOW * WINDOW, tz=now.tzinfo)


def drain(limit: float) -> None:
    """Run delivery, honouring the backoff, until no event is pending."""
    deadline = time.monotonic() + limit
    pending = UsageEvent.objects.filter(status=UsageEvent.Status.PENDING)
    while pending.exists():
        assert time.monotonic() < deadline, f"{pending.count()} events still pending"
        if deliver_pending().idle:
            time.sleep(FAST_RETRIES["RETRY_MAX_DELAY"] / 5)


@pytest.mark.parametrize("events", SIZES)
@pytest.mark.parametrize("mode", MODES)
def test_every_event_is_billed_exactly_once_through_a_flaky_stripe(
    fake_stripe: FakeStripe,
    api_calls: Metric,
    configure: Configure,
    report_figure: Callable[[str], None],
    mode: str,
    events: int,
) -> None:
    configure(**MODES[mode], **FAST_RETRIES)
    customers = [str(fake_stripe.create_customer()["id"]) for _ in range(CUSTOMERS)]
    before = closed_windows_start(timezone.now())
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage(
            api_calls,
            customers[n % CUSTOMERS],
            VALUES[n % len(VALUES)],
            timestamp=before - timedelta(seconds=1 + n % SPREAD),
        )
        for n in range(events)
    )
    add_faults(fake_stripe, MODES[mode]["METER_API"])
    started = time.monotonic()

    drain(limit=events / 20)

    elapsed = time.monotonic() - started
    counters = dict(fake_stripe.faults.counters)
    fake_stripe.faults.clear()
    resent = fake_stripe.duplicate_identifier_rejections + fake_stripe.duplicate_identifiers_ignored
    assert resent > 0  # answers were lost after Stripe stored the events, and resent
    assert_billed_exactly_once(fake_stripe, "api_calls", ledger_rows(api_calls))
    requests = fake_stripe.request_count()
    report_figure(
        f"flaky Stripe, {mode}, {events:,} events: drained in {elapsed:.1f} s with {requests:,} "
        f"requests; faults {dict(sorted(counters.items()))}; {resent} resent identifiers "
        "deduplicated; totals exact"
    )
