"""Seat quantities: pushed with the metric's proration, coalesced, ordered by version and
rate-limited per subscription."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

import billflow_usage
from billflow_usage.backends.base import Outcome, QuantityPush, Result
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.delivery import deliver_pending
from billflow_usage.delivery.seats import claim_links, mark_link
from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure
from tests.factories import LicensedMetricFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def seats(configure: Configure) -> Metric:
    return LicensedMetricFactory(key="seats", proration_behavior="always_invoice")


@pytest.fixture
def subscription(fake_stripe: FakeStripe, customer: str) -> dict[str, str]:
    """A subscription with a licensed seat item and a second licensed item."""
    seat_price = fake_stripe.create_price(unit_amount=1000)
    subscription = fake_stripe.create_subscription(customer, seat_price["id"], quantity=1)
    return {"id": subscription["id"], "item": subscription["items"]["data"][0]["id"]}


@pytest.fixture
def seat_link(seats: Metric, customer: str, subscription: dict[str, str]) -> SubscriptionItemLink:
    return SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=seats,
        stripe_subscription_id=subscription["id"],
        stripe_subscription_item_id=subscription["item"],
    )


@pytest.fixture
def second_link(
    fake_stripe: FakeStripe, seats: Metric, subscription: dict[str, str]
) -> SubscriptionItemLink:
    """Another customer's seats, on a subscription of its own."""
    other = str(fake_stripe.create_customer(email="grace@example.com")["id"])
    price = fake_stripe.create_price(unit_amount=1000)
    created = fake_stripe.create_subscription(other, price["id"], quantity=1)
    return SubscriptionItemLink.objects.create(
        customer_id=other,
        metric=seats,
        stripe_subscription_id=created["id"],
        stripe_subscription_item_id=created["items"]["data"][0]["id"],
    )


class StallingBackend(StripeBackend):
    """The Stripe backend (over HTTP to the fake) of a worker that hangs after its first
    push: ``stall`` runs then, as whatever happens meanwhile."""

    def __init__(self, stall: Callable[[], None]) -> None:
        super().__init__()
        self.stall = stall
        self.pushes = 0

    def push_quantity(self, push: QuantityPush) -> Result:
        result = super().push_quantity(push)
        self.pushes += 1
        if self.pushes == 1:
            self.stall()
        return result


def pushed(fake_stripe: FakeStripe, link: SubscriptionItemLink) -> list[int]:
    """The quantities Stripe received for ``link``'s item, in order."""
    item = link.stripe_subscription_item_id
    return [u["quantity"] for u in fake_stripe.quantity_updates if u["item"] == item]


def allow_next_push() -> None:
    """Act as if the rate limit's spacing has passed."""
    SubscriptionItemLink.objects.update(synced_at=timezone.now() - timedelta(hours=1))


def test_quantity_is_pushed_with_the_metrics_proration(
    fake_stripe: FakeStripe, seat_link: SubscriptionItemLink, customer: str
) -> None:
    billflow_usage.set_quantity("seats", customer, 5)

    stats = deliver_pending()

    assert (stats.seats_claimed, stats.seats_pushed) == (1, 1)
    assert fake_stripe.subscription_item(seat_link.stripe_subscription_item_id)["quantity"] == 5
    [update] = fake_stripe.quantity_updates
    assert update["proration_behavior"] == "always_invoice"
    seat_link.refresh_from_db()
    assert (seat_link.synced_quantity, seat_link.synced_version) == (5, 1)
    assert seat_link.quantity_in_sync
    assert deliver_pending().seats_claimed == 0


def test_default_proration_applies_when_the_metric_has_none(
    fake_stripe: FakeStripe, seat_link: SubscriptionItemLink, customer: str, configure: Configure
) -> None:
    Metric.objects.filter(key="seats").update(proration_behavior="")
    configure(DEFAULT_PRORATION_BEHAVIOR="none")
    billflow_usage.set_quantity("seats", customer, 2)

    deliver_pending()

    assert [u["proration_behavior"] for u in fake_stripe.quantity_updates] == ["none"]


def test_changes_before_a_push_are_coalesced_into_one(
    fake_stripe: FakeStripe, seat_link: SubscriptionItemLink, customer: str
) -> None:
    for quantity in (2, 3, 4, 3):
        billflow_usage.set_quantity("seats", customer, quantity)

    deliver_pending()

    assert [u["quantity"] for u in fake_stripe.quantity_updates] == [3]
    seat_link.refresh_from_db()
    assert (seat_link.synced_quantity, seat_link.synced_version) == (3, 4)


def test_pushes_are_spaced_per_subscription(
    fake_stripe: FakeStripe,
    seat_link: SubscriptionItemLink,
    customer: str,
    configure: Configure,
    subscription: dict[str, str],
) -> None:
    configure(SEAT_UPDATES_PER_HOUR=2)
    admins = LicensedMetricFactory(key="admins")
    other_price = fake_stripe.create_price(unit_amount=500)
    other_item = fake_stripe.create_subscription(customer, other_price["id"], quantity=1)
    SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=admins,
        stripe_subscription_id=subscription["id"],  # the same subscription
        stripe_subscription_item_id=other_item["items"]["data"][0]["id"],
    )
    billflow_usage.set_quantity("seats", customer, 5)
    billflow_usage.set_quantity("admins", customer, 2)

    assert deliver_pending().seats_pushed == 1  # one push per subscription per 30 minutes
    billflow_usage.set_quantity("seats", customer, 6)
    assert deliver_pending().seats_claimed == 0

    allow_next_push()
    assert deliver_pending().seats_pushed == 1
    allow_next_push()
    assert deliver_pending().seats_pushed == 1
    assert len(fake_stripe.quantity_updates) == 3
    assert not any(
        link.quantity_version > link.synced_version for link in SubscriptionItemLink.objects.all()
    )


def test_an_older_quantity_never_overwrites_a_newer_confirmation(
    fake_stripe: FakeStripe, seat_link: SubscriptionItemLink, customer: str
) -> None:
    billflow_usage.set_quantity("seats", customer, 5)
    [slow] = claim_links(using="default", now=timezone.now(), limit=10).links
    billflow_usage.set_quantity("seats", customer, 7)
    SubscriptionItemLink.objects.update(push_after=None)  # the slow worker's lease ran out

    assert deliver_pending().seats_pushed == 1
    mark_link(slow, Result(slow.push.subscription_item_id, Outcome.DELIVERED), using="default")

    seat_link.refresh_from_db()
    assert (seat_link.synced_quantity, seat_link.synced_version) == (7, 2)
    assert slow.push.quantity == 5


def test_a_worker_whose_lease_ran_out_mid_batch_never_pushes_a_stale_quantity(
    fake_stripe: FakeStripe,
    seat_link: SubscriptionItemLink,
    second_link: SubscriptionItemLink,
    customer: str,
    configure: Configure,
) -> None:
    """The issue's scenario: worker A claims two links, hangs past its lease after the first
    push; worker B claims the second, pushes the newer 7; A must not push its stale 5 then."""
    configure(CLAIM_LEASE=300)
    billflow_usage.set_quantity("seats", customer, 2)
    billflow_usage.set_quantity("seats", second_link.customer_id, 5)

    with time_machine.travel(timezone.now(), tick=True) as clock:

        def worker_b() -> None:
            clock.shift(timedelta(seconds=301))
            billflow_usage.set_quantity("seats", second_link.customer_id, 7)
            assert deliver_pending(link_ids=[second_link.pk]).seats_pushed == 1

        deliver_pending(backend=StallingBackend(worker_b))

    assert pushed(fake_stripe, second_link) == [7]
    assert fake_stripe.subscription_item(second_link.stripe_subscription_item_id)["quantity"] == 7
    second_link.refresh_from_db()
    assert (second_link.quantity, second_link.synced_quantity) == (7, 7)
    assert second_link.quantity_in_sync


def test_a_worker_stops_and_releases_its_links_before_its_lease_ends(
    fake_stripe: FakeStripe,
    seat_link: SubscriptionItemLink,
    second_link: SubscriptionItemLink,
    customer: str,
    configure: Configure,
) -> None:
    """Too little of the lease is left for a request's timeout: the rest goes back at once,
    for any worker to claim, rather than waiting out the lease."""
    configure(CLAIM_LEASE=300)
    billflow_usage.set_quantity("seats", customer, 2)
    billflow_usage.set_quantity("seats", second_link.customer_id, 5)

    with time_machine.travel(timezone.now(), tick=True) as clock:
        stats = deliver_pending(
            backend=StallingBackend(lambda: clock.shift(timedelta(seconds=290))), max_batches=1
        )

        assert (stats.seats_claimed, stats.seats_pushed) == (2, 1)
        second_link.refresh_from_db()
        assert (second_link.push_after, second_link.claim_token) == (None, None)
        assert deliver_pending().seats_pushed == 1

    assert pushed(fake_stripe, second_link) == [5]
    second_link.refresh_from_db()
    assert second_link.quantity_in_sync


def test_a_newer_quantity_set_after_the_claim_is_the_one_pushed(
    fake_stripe: FakeStripe,
    seat_link: SubscriptionItemLink,
    second_link: SubscriptionItemLink,
    customer: str,
) -> None:
    """The version is read again right before each push."""
    billflow_usage.set_quantity("seats", customer, 2)
    billflow_usage.set_quantity("seats", second_link.customer_id, 5)

    stalling = StallingBackend(
        lambda: billflow_usage.set_quantity("seats", second_link.customer_id, 7)
    )
    assert deliver_pending(backend=stalling, max_batches=1).seats_pushed == 2

    assert pushed(fake_stripe, second_link) == [7]
    second_link.refresh_from_db()
    assert (second_link.synced_quantity, second_link.synced_version) == (7, 2)
    assert second_link.quantity_in_sync


def test_a_stale_push_that_got_through_anyway_is_pushed_over_again(
    fake_stripe: FakeStripe, seat_link: SubscriptionItemLink, customer: str
) -> None:
    """Should a stale push still land after a newer confirmed one (a clock far off), its mark
    says so: the link is due again rather than in sync over Stripe's stale quantity."""
    billflow_usage.set_quantity("seats", customer, 5)
    [slow] = claim_links(using="default", now=timezone.now(), limit=10).links
    billflow_usage.set_quantity("seats", customer, 7)
    SubscriptionItemLink.objects.update(push_after=None)  # the slow worker's lease ran out
    assert deliver_pending().seats_pushed == 1

    backend = StripeBackend()
    late = backend.push_quantity(slow.push)
    backend.close()
    mark_link(slow, late, using="default")

    seat_link.refresh_from_db()
    assert not seat_link.quantity_in_sync
    allow_next_push()
    assert deliver_pending().seats_pushed == 1
    assert pushed(fake_stripe, seat_link) == [7, 5, 7]
    seat_link.refresh_from_db()
    assert (seat_link.quantity, seat_link.synced_quantity) == (7, 7)
    assert seat_link.quantity_in_sync


def test_a_failed_push_keeps_stripes_error_and_waits(
    fake_stripe: FakeStripe, seat_link: SubscriptionItemLink, customer: str
) -> None:
    SubscriptionItemLink.objects.update(stripe_subscription_item_id="si_doesnotexist")
    billflow_usage.set_quantity("seats", customer, 5)

    assert deliver_pending().seats_failed == 1

    seat_link.refresh_from_db()
    assert seat_link.last_error_code == "resource_missing"
    assert "si_doesnotexist" in seat_link.last_error_message
    assert seat_link.push_after is not None
    assert seat_link.push_after > timezone.now() + timedelta(seconds=30)  # RETRY_MAX_DELAY
    assert deliver_pending().seats_claimed == 0


def test_a_5xx_push_is_retried_under_a_new_idempotency_key(
    fake_stripe: FakeStripe, seat_link: SubscriptionItemLink, customer: str
) -> None:
    fake_stripe.faults.add("status", status=500, route="/v1/subscription_items/*", times=1)
    billflow_usage.set_quantity("seats", customer, 4)

    assert deliver_pending().seats_retried == 1
    SubscriptionItemLink.objects.update(push_after=None)
    assert deliver_pending().seats_pushed == 1

    seat_link.refresh_from_db()
    assert (seat_link.synced_quantity, seat_link.push_attempts, seat_link.last_error_code) == (
        4,
        0,
        "",
    )
