"""Subscriptions, seats and Stripe's limit of 200 quantity updates per hour."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe


@pytest.fixture
def licensed(fake: FakeStripe) -> str:
    return str(fake.create_price(unit_amount=1500)["id"])


@pytest.fixture
def metered(fake: FakeStripe) -> str:
    meter = fake.create_meter("api_calls")
    return str(fake.create_price(unit_amount=2, meter=meter["id"])["id"])


def subscribe(client: stripe.StripeClient, customer: str, *items: dict[str, Any]) -> Any:
    return client.v1.subscriptions.create({"customer": customer, "items": list(items)})


def test_create_with_licensed_and_metered_items(
    client: stripe.StripeClient, customer: str, licensed: str, metered: str
) -> None:
    sub = subscribe(client, customer, {"price": licensed, "quantity": 3}, {"price": metered})
    assert sub.id.startswith("sub_")
    assert sub.status == "active"
    seat, usage = sub["items"]["data"]
    assert seat.id.startswith("si_")
    assert seat.quantity == 3
    assert "quantity" not in usage
    assert seat.current_period_end - seat.current_period_start >= 28 * 86_400
    assert client.v1.subscriptions.retrieve(sub.id).customer == customer


def test_licensed_quantity_defaults_to_one(
    client: stripe.StripeClient, customer: str, licensed: str
) -> None:
    sub = subscribe(client, customer, {"price": licensed})
    assert sub["items"]["data"][0].quantity == 1


def test_quantity_on_metered_price_is_refused(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, metered: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        subscribe(client, customer, {"price": metered, "quantity": 1})
    assert "Quantity should not be specified where usage_type is `metered`" in str(
        exc.value.user_message
    )
    assert client.v1.subscriptions.list({"customer": customer}).data == []
    item = fake.create_subscription(customer, metered)["items"]["data"][0]["id"]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.subscription_items.update(item, {"quantity": 2})
    assert "metered" in str(exc.value.user_message)


def test_unknown_customer_or_price(client: stripe.StripeClient, licensed: str) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        subscribe(client, "cus_missing", {"price": licensed})


def test_list_filters_and_cancel(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, licensed: str
) -> None:
    first = subscribe(client, customer, {"price": licensed})
    second = subscribe(client, customer, {"price": licensed})
    other = fake.create_customer()["id"]
    subscribe(client, other, {"price": licensed})
    canceled = client.v1.subscriptions.cancel(first.id)
    assert canceled.status == "canceled"
    assert canceled.canceled_at is not None
    listed = client.v1.subscriptions.list({"customer": customer})
    assert [s.id for s in listed] == [second.id]
    assert [s.id for s in client.v1.subscriptions.list({"status": "canceled"})] == [first.id]
    everything = client.v1.subscriptions.list({"customer": customer, "status": "all"})
    assert {s.id for s in everything} == {first.id, second.id}


def test_item_list_get_and_update(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, licensed: str
) -> None:
    sub = subscribe(client, customer, {"price": licensed, "quantity": 2})
    [item] = client.v1.subscription_items.list({"subscription": sub.id}).data
    assert client.v1.subscription_items.retrieve(item.id).quantity == 2
    updated = client.v1.subscription_items.update(
        item.id, {"quantity": 5, "proration_behavior": "always_invoice"}
    )
    assert updated.quantity == 5
    assert fake.subscription_item(item.id)["quantity"] == 5
    client.v1.subscription_items.update(item.id, {"quantity": 4})
    assert [(u["item"], u["quantity"], u["proration_behavior"]) for u in fake.quantity_updates] == [
        (item.id, 5, "always_invoice"),
        (item.id, 4, "create_prorations"),
    ]
    assert client.v1.subscriptions.retrieve(sub.id)["items"]["data"][0].quantity == 4


def test_negative_quantity_and_bad_proration_are_refused(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, licensed: str
) -> None:
    item = fake.create_subscription(customer, licensed, quantity=2)["items"]["data"][0]["id"]
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.subscription_items.update(item, {"quantity": -1})
    assert exc.value.param == "quantity"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscription_items.update(
            item,
            {"quantity": 3, "proration_behavior": "sometimes"},
        )
    assert fake.subscription_item(item)["quantity"] == 2
    assert fake.quantity_updates == []


def test_200_quantity_updates_per_hour_per_subscription(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, licensed: str
) -> None:
    item = fake.create_subscription(customer, licensed, quantity=1)["items"]["data"][0]["id"]
    neighbour = fake.create_subscription(customer, licensed)["items"]["data"][0]["id"]
    for n in range(200):
        client.v1.subscription_items.update(item, {"quantity": n})
    with pytest.raises(stripe.RateLimitError) as exc:
        client.v1.subscription_items.update(item, {"quantity": 500})
    assert exc.value.http_status == 429
    assert exc.value.error is not None
    assert exc.value.error.code == "rate_limit"
    assert exc.value.headers is not None
    assert exc.value.headers["Stripe-Should-Retry"] == "false"
    assert fake.subscription_item(item)["quantity"] == 199
    assert len(fake.seat_rate_limit_hits) == 1
    assert (
        fake.seat_rate_limit_hits[0]["subscription"] == fake.subscription_item(item)["subscription"]
    )
    client.v1.subscription_items.update(neighbour, {"quantity": 7})  # other subscription
    fake.clock.advance(3_601)
    client.v1.subscription_items.update(item, {"quantity": 500})
    assert fake.subscription_item(item)["quantity"] == 500
    assert len(fake.quantity_updates) == 202


def test_a_subscription_cancelled_from_elsewhere_lists_as_canceled(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    customer = str(fake.create_customer()["id"])
    price = fake.create_price()["id"]
    subscription = fake.create_subscription(customer, price, quantity=2)

    fake.cancel_subscription(subscription["id"])

    assert client.v1.subscriptions.retrieve(subscription["id"]).status == "canceled"
    assert list(client.v1.subscriptions.list({"customer": customer}).data) == []
