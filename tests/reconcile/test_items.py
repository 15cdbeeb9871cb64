"""Subscription item links refreshed from Stripe: new items, canceled subscriptions, meters."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
import stripe
from django.db import connection
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink
from tests.factories import MetricFactory
from tests.reconcile.conftest import Account, ago, before_links_are_written, sync_json

pytestmark = pytest.mark.django_db


def test_a_new_subscription_is_picked_up_with_its_period(account: Account) -> None:
    customer = account.customer()
    billflow_usage.record_usage("api_calls", customer, 1, timestamp=ago(hours=5))
    sub = account.subscribe(customer)

    document = sync_json()

    link = SubscriptionItemLink.objects.get(customer_id=customer, metric=account.api_calls)
    item = sub["items"]["data"][0]
    assert (link.active, link.stripe_subscription_id, link.stripe_subscription_item_id) == (
        True,
        sub["id"],
        item["id"],
    )
    assert int(link.current_period_start.timestamp()) == item["current_period_start"]
    assert int(link.current_period_end.timestamp()) == item["current_period_end"]
    assert [(i["customer_id"], i["action"], i["applied"]) for i in document["items"]] == [
        (customer, "created", True)
    ]
    assert document["summary"]["links_created"] == 1


def test_every_subscription_of_the_account_is_discovered(account: Account) -> None:
    """Without --customer all subscriptions are listed (100 a page), so even a customer
    with no usage yet gets its seat link."""
    customer = account.customer()
    account.subscribe(customer, price=account.seat_price, quantity=4)

    sync_json()

    link = SubscriptionItemLink.objects.get(customer_id=customer, metric=account.seats)
    assert (link.quantity, link.synced_quantity, link.quantity_in_sync) == (4, 4, True)


def test_a_canceled_subscription_deactivates_its_link(
    account: Account, client: stripe.StripeClient
) -> None:
    customer = account.customer()
    sub = account.subscribe(customer)
    billflow_usage.record_usage("api_calls", customer, 1, timestamp=ago(hours=5))
    sync_json()
    client.v1.subscriptions.cancel(sub["id"])

    document = sync_json()

    link = SubscriptionItemLink.objects.get(customer_id=customer, metric=account.api_calls)
    assert link.active is False
    [change] = document["items"]
    assert (change["action"], change["previous_item_id"]) == (
        "deactivated",
        sub["items"]["data"][0]["id"],
    )
    # Usage without an active item is unbilled from now on.
    assert [(u["customer_id"], u["metric"]) for u in document["unbilled"]] == [
        (customer, "api_calls")
    ]


def test_a_replacing_subscription_carries_the_desired_quantity(
    account: Account, client: stripe.StripeClient
) -> None:
    customer = account.customer()
    old = account.subscribe(customer, price=account.seat_price, quantity=3)
    sync_json("--customer", customer)
    billflow_usage.set_quantity("seats", customer, 5)
    client.v1.subscriptions.cancel(old["id"])
    new = account.subscribe(customer, price=account.seat_price, quantity=1, age=timedelta(0))

    document = sync_json("--customer", customer)

    link = SubscriptionItemLink.objects.get(customer_id=customer, metric=account.seats, active=True)
    assert link.stripe_subscription_item_id == new["items"]["data"][0]["id"]
    assert link.quantity == 5
    assert {c["action"] for c in document["items"]} == {"replaced"}
    # Delivery ran after the refresh, so the carried quantity is pushed already.
    assert account.fake.subscription_item(link.stripe_subscription_item_id)["quantity"] == 5


def test_a_period_refresh_never_undoes_a_concurrent_set_quantity(account: Account) -> None:
    """billflow_sync reads the link, set_quantity(9) commits, billflow_sync writes the new
    period: the 9 survives and is what Stripe gets."""
    customer = account.customer()
    sub = account.subscribe(customer, price=account.seat_price, quantity=2)
    sync_json()
    SubscriptionItemLink.objects.update(current_period_start=None)  # a period to refresh

    with before_links_are_written(lambda: billflow_usage.set_quantity("seats", customer, 9)):
        document = sync_json()

    assert document["summary"]["links_updated"] == 1
    link = SubscriptionItemLink.objects.get(customer_id=customer, active=True)
    assert link.current_period_start == account.period_start(sub)
    assert (link.quantity, link.synced_quantity, link.quantity_in_sync) == (9, 9, True)
    assert account.fake.subscription_item(link.stripe_subscription_item_id)["quantity"] == 9


def test_attaching_an_item_takes_stripes_quantity_only_when_none_is_wanted(
    account: Account,
) -> None:
    """A link waiting for its item (made before the customer subscribed) adopts Stripe's
    quantity only while it has no desired one: a set_quantity landing meanwhile wins."""
    adopting, wanting = account.customer(), account.customer()
    for customer in (adopting, wanting):
        SubscriptionItemLink.objects.create(customer_id=customer, metric=account.seats)
        account.subscribe(customer, price=account.seat_price, quantity=3)

    with before_links_are_written(lambda: billflow_usage.set_quantity("seats", wanting, 9)):
        sync_json()

    adopted = SubscriptionItemLink.objects.get(customer_id=adopting)
    assert (adopted.quantity, adopted.synced_quantity, adopted.quantity_in_sync) == (3, 3, True)
    wanted = SubscriptionItemLink.objects.get(customer_id=wanting)
    assert (wanted.quantity, wanted.synced_quantity, wanted.quantity_in_sync) == (9, 9, True)
    assert account.fake.subscription_item(wanted.stripe_subscription_item_id)["quantity"] == 9


def set_quantity_in_another_connection(customer: str, quantity: int) -> threading.Thread:
    """``set_quantity`` in a thread (its own connection), once it has committed or is waiting
    for a row lock."""

    def run() -> None:
        try:
            billflow_usage.set_quantity("seats", customer, quantity)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                break
        time.sleep(0.01)
    return thread


@pytest.mark.django_db(transaction=True)
def test_a_replacement_carries_a_set_quantity_that_races_it(
    on_postgresql: None, account: Account, client: stripe.StripeClient
) -> None:
    """set_quantity(9) on the replaced link while billflow_sync replaces it: it commits
    before the replacement reads the desired quantity, or waits and lands on the new link."""
    customer = account.customer()
    old = account.subscribe(customer, price=account.seat_price, quantity=3)
    sync_json("--customer", customer)
    billflow_usage.set_quantity("seats", customer, 5)
    client.v1.subscriptions.cancel(old["id"])
    new = account.subscribe(customer, price=account.seat_price, quantity=1, age=timedelta(0))
    racing: list[threading.Thread] = []

    with before_links_are_written(
        lambda: racing.append(set_quantity_in_another_connection(customer, 9))
    ):
        sync_json("--customer", customer)
    racing[0].join()

    link = SubscriptionItemLink.objects.get(customer_id=customer, metric=account.seats, active=True)
    assert (link.stripe_subscription_item_id, link.quantity) == (new["items"]["data"][0]["id"], 9)
    SubscriptionItemLink.objects.update(synced_at=timezone.now() - timedelta(hours=1))
    deliver_pending()
    assert account.fake.subscription_item(link.stripe_subscription_item_id)["quantity"] == 9


def test_per_customer_listing_with_customer_option(account: Account) -> None:
    first, second = account.customer(), account.customer()
    account.subscribe(first)
    account.subscribe(second)

    sync_json("--customer", first)

    assert account.fake.request_count("/v1/subscriptions", "GET") == 1
    assert set(SubscriptionItemLink.objects.values_list("customer_id", flat=True)) == {first}


def test_meters_are_found_by_event_name_or_created(account: Account) -> None:
    account.fake.create_meter("exports", formula="count")
    found = MetricFactory(key="exports", event_name="exports", aggregation="count")
    created = MetricFactory(key="uploads", event_name="uploads", aggregation="sum")

    dry = sync_json("--dry-run", "--create-meters")
    assert {(m["metric"], m["action"], m["applied"]) for m in dry["meters"]} == {
        ("exports", "found", False),
        ("uploads", "created", False),
    }
    assert Metric.objects.get(pk=created.pk).stripe_meter_id == ""

    plain = sync_json()
    assert {(m["metric"], m["action"]) for m in plain["meters"]} == {
        ("exports", "found"),
        ("uploads", "missing"),
    }
    found.refresh_from_db()
    assert found.stripe_meter_id.startswith("mtr_")

    document = sync_json("--create-meters")
    assert [(m["metric"], m["action"], m["applied"]) for m in document["meters"]] == [
        ("uploads", "created", True)
    ]
    created.refresh_from_db()
    assert created.stripe_meter_id.startswith("mtr_")
    assert document["summary"]["meters_created"] == 1
    assert account.fake.request_count("/v1/billing/meters", "POST") == 1
