"""One fake Stripe server for the whole folder, reset before every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.fake_stripe.helpers import make_client


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeStripe) -> Iterator[FakeStripe]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return make_client(fake)


@pytest.fixture
def customer(fake: FakeStripe) -> str:
    return str(fake.create_customer(email="ada@example.com")["id"])


@pytest.fixture
def meter(fake: FakeStripe) -> dict[str, Any]:
    return fake.create_meter("api_calls", formula="sum")
