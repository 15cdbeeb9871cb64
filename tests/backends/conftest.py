"""Backend tests call the Stripe backend directly (plain data in, Results out) over HTTP."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone

from billflow_usage.backends.base import MeterEvent
from billflow_usage.testing.fake_stripe import FakeStripe


@pytest.fixture
def customer(fake_stripe: FakeStripe) -> str:
    return str(fake_stripe.create_customer()["id"])


@pytest.fixture
def meter(fake_stripe: FakeStripe) -> str:
    fake_stripe.create_meter("api_calls")
    return "api_calls"


def event(customer: str, identifier: str, value: int = 1, at: datetime | None = None) -> MeterEvent:
    return MeterEvent(
        identifier=identifier,
        event_name="api_calls",
        customer_id=customer,
        value=value,
        timestamp=at or timezone.now(),
    )
