"""Delivery tests run the real Stripe backend over HTTP against the fake Stripe server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.factories import MetricFactory

Configure = Callable[..., None]


@pytest.fixture
def configure(settings: Any, fake_stripe: FakeStripe) -> Configure:
    """Set ``BILLFLOW_USAGE`` keys on top of the fake Stripe configuration."""

    def apply(**overrides: Any) -> None:
        settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, **overrides}

    apply(DELIVERY="worker", RETRY_BASE_DELAY=1.0, RETRY_MAX_DELAY=60.0)
    return apply


@pytest.fixture
def customer(fake_stripe: FakeStripe) -> str:
    return str(fake_stripe.create_customer(email="ada@example.com")["id"])


@pytest.fixture
def api_calls(db: None, fake_stripe: FakeStripe) -> Metric:
    """A metered sum metric with its meter in the fake."""
    fake_stripe.create_meter("api_calls", formula="sum")
    return MetricFactory(key="api_calls", event_name="api_calls")


def make_due() -> None:
    """Skip the backoff wait: every pending row is due now."""
    UsageEvent.objects.filter(status=UsageEvent.Status.PENDING).update(
        next_attempt_at=timezone.now()
    )


def expire_claims() -> None:
    """Act as if the claims' leases ran out (their worker died)."""
    UsageEvent.objects.exclude(claim_token=None).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
