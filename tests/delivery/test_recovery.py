"""Once Stripe answers again after an outage, rows waiting out their backoff are due at once;
rows that failed for reasons of their own keep their backoff."""

from __future__ import annotations

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.backends.base import BaseBackend
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure

pytestmark = pytest.mark.django_db

PENDING = UsageEvent.Status.PENDING


@pytest.fixture
def backend(configure: Configure) -> BaseBackend:
    configure(RETRY_BASE_DELAY=600.0, RETRY_MAX_DELAY=3600.0, METER_API="v1")
    return billflow_usage.backends.get_backend()


def waiting(code: str) -> int:
    """Rows still pending on ``code`` whose next attempt is in the future."""
    return UsageEvent.objects.filter(
        status=PENDING, last_error_code=code, next_attempt_at__gt=timezone.now()
    ).count()


def fail_one(fake: FakeStripe, backend: BaseBackend, customer: str, **fault: object) -> None:
    fake.faults.add(**fault)  # type: ignore[arg-type]
    billflow_usage.record_usage("api_calls", customer)
    deliver_pending(backend=backend)
    fake.faults.clear()


@pytest.mark.parametrize(
    ("fault", "code"),
    [({"kind": "outage"}, "api_connection_error"), ({"kind": "status", "status": 503}, "http_503")],
)
def test_rows_that_waited_out_an_outage_are_due_once_stripe_answers(
    fake_stripe: FakeStripe,
    backend: BaseBackend,
    api_calls: Metric,
    customer: str,
    fault: dict[str, object],
    code: str,
) -> None:
    fail_one(fake_stripe, backend, customer, **fault)
    assert waiting(code) == 1

    billflow_usage.record_usage("api_calls", customer)
    deliver_pending(backend=backend)  # Stripe is back: this one goes through...

    assert waiting(code) == 0  # ...and the one that waited is due now,
    deliver_pending(backend=backend)
    assert fake_stripe.meter_event_total("api_calls", customer) == 2  # so it's billed now.


def test_rows_failing_for_their_own_reasons_keep_their_backoff(
    fake_stripe: FakeStripe, backend: BaseBackend, api_calls: Metric, customer: str
) -> None:
    fail_one(fake_stripe, backend, customer, kind="status", status=429, code="lock_timeout")

    billflow_usage.record_usage("api_calls", customer)
    deliver_pending(backend=backend)

    assert waiting("lock_timeout") == 1


def test_a_sink_that_cannot_tell_outages_wakes_nothing(
    fake_stripe: FakeStripe, backend: BaseBackend, api_calls: Metric, customer: str
) -> None:
    backend.is_outage = lambda result: False  # type: ignore[method-assign]
    fail_one(fake_stripe, backend, customer, kind="outage")

    billflow_usage.record_usage("api_calls", customer)
    deliver_pending(backend=backend)

    assert waiting("api_connection_error") == 1
