"""Admin tests: staff users with chosen permissions, and a Stripe account in the fake Stripe
server (a sum meter, its metered price, one subscribed customer) for the pages that read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from billflow_usage.tracking import metric_cache
from tests.factories import MetricFactory, SubscriptionItemLinkFactory

#: How long ago the subscribed customer's billing period started.
PERIOD_AGE = timedelta(days=3)


def staff_with(*codenames: str) -> User:
    user = User.objects.create_user(
        f"staff-{'-'.join(codenames) or 'none'}", password="pw", is_staff=True
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def viewer(db):
    return staff_with("view_usageevent", "view_subscriptionitemlink", "view_metric")


@pytest.fixture
def editor(db):
    return staff_with(
        "view_usageevent",
        "change_usageevent",
        "view_subscriptionitemlink",
        "change_subscriptionitemlink",
        "view_metric",
        "change_metric",
    )


@pytest.fixture(autouse=True)
def _fresh_metric_cache() -> Iterator[None]:
    """record_usage() caches metrics by key; each test makes its own."""
    metric_cache.clear()
    yield
    metric_cache.clear()


def ago(**kwargs: float) -> datetime:
    return timezone.now() - timedelta(**kwargs)


@dataclass
class Account:
    """A Stripe account in the fake, and the customer subscribed to its metered price."""

    fake: FakeStripe
    customer: str
    api_calls: Metric
    link: SubscriptionItemLink

    @property
    def client(self) -> stripe.StripeClient:
        """A plain StripeClient on the fake, to make drift 'from elsewhere'."""
        return stripe.StripeClient(
            FAKE_STRIPE_API_KEY,
            base_addresses={"api": self.fake.url, "meter_events": self.fake.url},
            max_network_retries=0,
        )

    def send_behind_the_ledgers_back(self, value: int, *, at: datetime) -> None:
        self.client.v1.billing.meter_events.create(
            {
                "event_name": self.api_calls.event_name,
                "payload": {"stripe_customer_id": self.customer, "value": str(value)},
                "timestamp": int(at.timestamp()),
            }
        )


@pytest.fixture
def account(db: None, fake_stripe: FakeStripe, settings: Any) -> Account:
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "DELIVERY": "worker", "METER_API": "v1"}
    meter = fake_stripe.create_meter("api_calls", formula="sum")
    price = fake_stripe.create_price(meter=meter["id"])["id"]
    customer = str(fake_stripe.create_customer()["id"])
    fake_stripe.clock.set((timezone.now() - PERIOD_AGE).timestamp())
    try:
        subscription = fake_stripe.create_subscription(customer, price)
    finally:
        fake_stripe.clock.reset()
    [item] = subscription["items"]["data"]
    api_calls = MetricFactory(key="api_calls", event_name="api_calls", stripe_meter_id=meter["id"])
    link = SubscriptionItemLinkFactory(
        customer_id=customer,
        metric=api_calls,
        stripe_subscription_id=subscription["id"],
        stripe_subscription_item_id=item["id"],
        current_period_start=datetime.fromtimestamp(item["current_period_start"], tz=UTC),
        current_period_end=datetime.fromtimestamp(item["current_period_end"], tz=UTC),
    )
    return Account(fake_stripe, customer, api_calls, link)
