"""The world every bad input is tried in: usage already recorded (sent and pending), seat
links, a customer and meter in the fake Stripe, and the means to deliver, check and post to
the admin. What is recorded here must come out of each attempt untouched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core import checks
from django.core.checks import CheckMessage
from django.test import Client
from django.urls import reverse

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.factories import LicensedMetricFactory, MetricFactory, WorkspaceFactory
from tests.testapp.models import Workspace


@dataclass
class Scene:
    fake: FakeStripe
    settings: Any
    configure: Callable[..., None]
    admin: Client
    #: A customer the fake Stripe knows.
    customer: str
    #: Metered, sum, with its meter in the fake.
    metric: Metric
    #: Licensed, with ``seat_link`` in sync with an item in the fake (3 seats).
    seats: Metric
    seat_link: SubscriptionItemLink
    #: An item of a metered price, stored as the customer's item for ``metric``.
    metered_link: SubscriptionItemLink
    #: A dj-stripe subscriber that has no dj-stripe Customer.
    workspace: Workspace
    #: What the case's ``prepare`` step returned.
    under_test: Any = None

    def deliver(self, event: UsageEvent) -> UsageEvent:
        """One delivery attempt of this event alone; the event as it then is."""
        deliver_pending(event_ids=[event.pk], link_ids=[], max_batches=1)
        event.refresh_from_db()
        return event

    def push(self, link: SubscriptionItemLink) -> SubscriptionItemLink:
        """One push attempt of this link's quantity alone; the link as it then is."""
        deliver_pending(event_ids=[], link_ids=[link.pk], max_batches=1)
        link.refresh_from_db()
        return link

    def checks(self) -> list[CheckMessage]:
        """This app's system checks, database ones included."""
        return checks.run_checks(tags=["billflow_usage"], databases=["default"])

    def retry(self, *events: UsageEvent) -> list[str]:
        """Run the ledger's Retry action on these rows; the messages the admin shows."""
        response = self.admin.post(
            reverse("admin:billflow_usage_usageevent_changelist"),
            {"action": "retry_failed", "_selected_action": [str(e.pk) for e in events]},
            follow=True,
        )
        return [str(message) for message in response.context["messages"]]

    def post_quantity(self, link: SubscriptionItemLink, quantity: str) -> list[str]:
        """Submit the admin's change form of ``link``; the errors shown for the quantity."""
        url = reverse("admin:billflow_usage_subscriptionitemlink_change", args=[link.pk])
        response = self.admin.post(url, {"quantity": quantity})
        assert response.status_code == 200, "the form was accepted"
        return list(response.context["adminform"].form.errors.get("quantity", []))


def build_scene(
    fake: FakeStripe, settings: Any, configure: Callable[..., None], admin: Client
) -> Scene:
    configure(METER_API="v1", RETRY_BASE_DELAY=0.001, RETRY_MAX_DELAY=0.001)
    customer = str(fake.create_customer()["id"])
    meter = fake.create_meter("api_calls")
    metric = MetricFactory(key="api_calls", event_name="api_calls")
    seats = LicensedMetricFactory(key="seats")
    seat_item = fake.create_subscription(customer, fake.create_price()["id"], quantity=3)
    metered_item = fake.create_subscription(customer, fake.create_price(meter=meter["id"])["id"])
    seat_link = SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=seats,
        stripe_subscription_id=seat_item["id"],
        stripe_subscription_item_id=seat_item["items"]["data"][0]["id"],
    )
    billflow_usage.set_quantity(seats, customer, 3)
    metered_link = SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=metric,
        stripe_subscription_id=metered_item["id"],
        stripe_subscription_item_id=metered_item["items"]["data"][0]["id"],
    )
    sent = billflow_usage.record_usage_bulk(
        billflow_usage.Usage(metric, customer, value) for value in (5, 7)
    )
    deliver_pending(event_ids=[event.pk for event in sent])
    billflow_usage.record_usage(metric, customer, 11, identifier="order-1")  # stays pending
    seat_link.refresh_from_db()
    assert seat_link.quantity_in_sync
    return Scene(
        fake=fake,
        settings=settings,
        configure=configure,
        admin=admin,
        customer=customer,
        metric=metric,
        seats=seats,
        seat_link=seat_link,
        metered_link=metered_link,
        workspace=WorkspaceFactory(),
    )
