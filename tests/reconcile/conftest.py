"""Reconciliation tests: the real Stripe backend over HTTP against the fake Stripe server.

``account`` builds a small Stripe catalogue in the fake (a sum meter with its metered price,
a seat price) and the matching metrics; ``account.subscribe(...)`` gives a customer a
subscription whose billing period started three days ago, so there is settled usage to
compare.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import stripe
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from billflow_usage.tracking import metric_cache
from tests.factories import LicensedMetricFactory, MetricFactory

PERIOD_AGE = timedelta(days=3)
#: Seconds past ``configure``'s settling window: usage delivered that long ago is compared.
SETTLED = 3600 + 60


@pytest.fixture(autouse=True)
def _fresh_metric_cache() -> Iterator[None]:
    metric_cache.clear()
    yield
    metric_cache.clear()


@pytest.fixture
def configure(settings: Any, fake_stripe: FakeStripe) -> Callable[..., None]:
    def apply(**overrides: Any) -> None:
        settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, **overrides}

    apply(DELIVERY="worker", SYNC_RATE_LIMIT=0, SETTLING_WINDOW=3600, DJSTRIPE_MAX_AGE=None)
    return apply


@pytest.fixture
def client(fake_stripe: FakeStripe) -> stripe.StripeClient:
    """A plain StripeClient on the fake, for injecting drift 'from elsewhere'."""
    return stripe.StripeClient(
        FAKE_STRIPE_API_KEY,
        base_addresses={"api": fake_stripe.url, "meter_events": fake_stripe.url},
        max_network_retries=0,
    )


@dataclass
class Account:
    fake: FakeStripe
    api_calls: Metric
    seats: Metric
    metered_price: str
    seat_price: str

    def customer(self) -> str:
        return str(self.fake.create_customer()["id"])

    def subscribe(
        self,
        customer: str,
        *,
        price: str | None = None,
        quantity: int | None = None,
        age: timedelta = PERIOD_AGE,
    ) -> dict[str, Any]:
        """A subscription with one item whose period started ``age`` ago."""
        self.fake.clock.set((timezone.now() - age).timestamp())
        try:
            return self.fake.create_subscription(customer, price or self.metered_price, quantity)
        finally:
            self.fake.clock.reset()

    def period_start(self, subscription: dict[str, Any]) -> datetime:
        start = subscription["items"]["data"][0]["current_period_start"]
        return datetime.fromtimestamp(start, tz=timezone.get_current_timezone())


@pytest.fixture
def account(db: None, fake_stripe: FakeStripe, configure: Callable[..., None]) -> Account:
    meter = fake_stripe.create_meter("api_calls", formula="sum")
    metered_price = fake_stripe.create_price(meter=meter["id"])["id"]
    seat_price = fake_stripe.create_price()["id"]
    api_calls = MetricFactory(key="api_calls", event_name="api_calls", stripe_meter_id=meter["id"])
    seats = LicensedMetricFactory(key="seats", stripe_price_id=seat_price)
    return Account(fake_stripe, api_calls, seats, metered_price, seat_price)


def ago(**kwargs: float) -> datetime:
    return timezone.now() - timedelta(**kwargs)


def sync(*args: str) -> tuple[str, int]:
    """Run billflow_sync; returns (stdout, exit code)."""
    out = io.StringIO()
    try:
        call_command("billflow_sync", *args, stdout=out, stderr=io.StringIO())
    except SystemExit as exc:  # pragma: no cover - call_command raises CommandError instead
        return out.getvalue(), int(exc.code or 0)
    return out.getvalue(), 0


def sync_json(*args: str) -> dict[str, Any]:
    out, _ = sync("--json", *args)
    document: dict[str, Any] = json.loads(out)
    return document


@contextmanager
def before_links_are_written(action: Callable[[], object]) -> Iterator[None]:
    """Run ``action`` once, right before the first statement that writes subscription item
    links (after a refresh read them, before it writes): a concurrent change landing in
    between, forced deterministically on this test's own connection."""
    table = SubscriptionItemLink._meta.db_table
    fired: list[bool] = []

    def wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        writes = sql.lstrip().upper().startswith(("UPDATE", "INSERT"))
        if writes and table in sql and not fired:
            fired.append(True)
            action()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield
    assert fired, "no subscription item link was written"


def sync_exit(*args: str) -> tuple[dict[str, Any], int]:
    """Run ``billflow_sync --json --fail-on-drift``; returns (report, exit code)."""
    out = io.StringIO()
    try:
        call_command("billflow_sync", "--json", "--fail-on-drift", *args, stdout=out)
    except CommandError as exc:
        return json.loads(out.getvalue()), exc.returncode
    return json.loads(out.getvalue()), 0
