"""Legacy usage records: only before API version 2025-03-31.basil, only without a meter."""

from __future__ import annotations

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe

LEGACY = "2025-02-24.acacia"


@pytest.fixture
def legacy_item(fake: FakeStripe, customer: str) -> str:
    price = fake.create_price(usage_type="metered")
    return str(fake.create_subscription(customer, price["id"])["items"]["data"][0]["id"])


def report(
    client: stripe.StripeClient,
    item: str,
    quantity: int,
    action: str,
    version: str = LEGACY,
    timestamp: int = 1_700_000_000,
) -> stripe.StripeResponse:
    return client.raw_request(
        "post",
        f"/v1/subscription_items/{item}/usage_records",
        quantity=quantity,
        timestamp=timestamp,
        action=action,
        stripe_version=version,
    )


def test_increment_and_set(client: stripe.StripeClient, fake: FakeStripe, legacy_item: str) -> None:
    response = report(client, legacy_item, 3, "increment")
    assert response.code == 200
    body = response.data
    assert body["object"] == "usage_record"
    assert body["id"].startswith("mbur_")
    assert body["subscription_item"] == legacy_item
    report(client, legacy_item, 4, "increment")
    assert fake.usage_record_totals == {legacy_item: 7}
    report(client, legacy_item, 2, "set")
    assert fake.usage_record_totals == {legacy_item: 2}


def test_set_overwrites_the_quantity_at_its_timestamp_only(
    client: stripe.StripeClient, fake: FakeStripe, legacy_item: str
) -> None:
    report(client, legacy_item, 3, "increment", timestamp=1_700_000_000)
    report(client, legacy_item, 4, "increment", timestamp=1_700_000_001)
    report(client, legacy_item, 5, "set", timestamp=1_700_000_001)
    report(client, legacy_item, 5, "set", timestamp=1_700_000_001)  # the same again: no change

    assert fake.usage_record_totals == {legacy_item: 3 + 5}


@pytest.mark.parametrize("version", ["2025-03-31.basil", "2026-08-26.dahlia"])
def test_removed_from_2025_03_31(
    client: stripe.StripeClient, fake: FakeStripe, legacy_item: str, version: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        report(client, legacy_item, 3, "increment", version)
    assert "2025-03-31" in str(exc.value.user_message)
    assert fake.usage_record_totals == {}


def test_default_client_version_is_refused(client: stripe.StripeClient, legacy_item: str) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.raw_request(
            "post", f"/v1/subscription_items/{legacy_item}/usage_records", quantity=1
        )


def test_only_for_meterless_metered_items(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    seats = fake.create_price()
    meter = fake.create_meter("api_calls")
    metered = fake.create_price(meter=meter["id"])
    for price in (seats, metered):
        item = fake.create_subscription(customer, price["id"])["items"]["data"][0]["id"]
        with pytest.raises(stripe.InvalidRequestError):
            report(client, item, 1, "increment")
    assert fake.usage_record_totals == {}
