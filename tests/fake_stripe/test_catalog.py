"""Customers, products, prices, meters, authentication and the generic HTTP surface."""

from __future__ import annotations

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.fake_stripe.helpers import http, make_client


def test_customers_create_get_list(client: stripe.StripeClient) -> None:
    created = client.v1.customers.create({"email": "ada@example.com", "metadata": {"k": "v"}})
    assert created.id.startswith("cus_")
    assert created.object == "customer"
    assert created.livemode is False
    assert created.metadata["k"] == "v"
    assert client.v1.customers.retrieve(created.id).email == "ada@example.com"
    client.v1.customers.create({"email": "bob@example.com"})
    assert [c.email for c in client.v1.customers.list({"email": "ada@example.com"})] == [
        "ada@example.com"
    ]
    assert len(client.v1.customers.list().data) == 2


def test_unknown_customer_is_404_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.retrieve("cus_nope")
    assert exc.value.http_status == 404
    assert exc.value.code == "resource_missing"


def test_list_pagination(client: stripe.StripeClient, fake: FakeStripe) -> None:
    ids = [fake.create_customer()["id"] for _ in range(5)]
    first = client.v1.customers.list({"limit": 2})
    assert first.has_more is True
    assert [c.id for c in first.data] == ids[::-1][:2]
    assert [c.id for c in first.auto_paging_iter()] == ids[::-1]


def test_prices_licensed_and_metered(client: stripe.StripeClient, fake: FakeStripe) -> None:
    meter = fake.create_meter("api_calls")
    licensed = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 1500,
            "product_data": {"name": "Seats"},
            "recurring": {"interval": "month", "usage_type": "licensed"},
        }
    )
    assert licensed.id.startswith("price_")
    assert licensed.recurring.usage_type == "licensed"
    assert licensed.product.startswith("prod_")
    product = client.v1.products.create({"name": "API"})
    metered = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 2,
            "product": product.id,
            "recurring": {"interval": "month", "usage_type": "metered", "meter": meter["id"]},
        }
    )
    assert metered.recurring.meter == meter["id"]
    assert client.v1.prices.retrieve(metered.id).unit_amount == 2
    assert [p.id for p in client.v1.prices.list({"product": product.id})] == [metered.id]


def test_metered_price_needs_a_meter_on_current_api_versions(
    client: stripe.StripeClient,
) -> None:
    params = {
        "currency": "usd",
        "unit_amount": 2,
        "product_data": {"name": "API"},
        "recurring": {"interval": "month", "usage_type": "metered"},
    }
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.prices.create(params)
    assert exc.value.param == "recurring[meter]"
    legacy = client.v1.prices.create(params, {"stripe_version": "2025-02-24.acacia"})
    assert legacy.recurring.meter is None


def test_meter_shape_and_defaults(client: stripe.StripeClient) -> None:
    meter = client.v1.billing.meters.create(
        {
            "display_name": "API calls",
            "event_name": "api_calls",
            "default_aggregation": {"formula": "count"},
        }
    )
    assert meter.id.startswith("mtr_")
    assert meter.object == "billing.meter"
    assert meter.status == "active"
    assert meter.default_aggregation.formula == "count"
    assert meter.customer_mapping.event_payload_key == "stripe_customer_id"
    assert meter.value_settings.event_payload_key == "value"
    assert client.v1.billing.meters.retrieve(meter.id).event_name == "api_calls"


def test_one_active_meter_per_event_name(client: stripe.StripeClient) -> None:
    params = {
        "display_name": "API calls",
        "event_name": "api_calls",
        "default_aggregation": {"formula": "sum"},
    }
    first = client.v1.billing.meters.create(params)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.billing.meters.create(params)
    assert exc.value.http_status == 400
    assert client.v1.billing.meters.deactivate(first.id).status == "inactive"
    second = client.v1.billing.meters.create(params)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meters.reactivate(first.id)
    client.v1.billing.meters.deactivate(second.id)
    reactivated = client.v1.billing.meters.reactivate(first.id)
    assert reactivated.status == "active"
    assert reactivated.status_transitions.deactivated_at is None
    assert [m.id for m in client.v1.billing.meters.list({"status": "active"})] == [first.id]


def test_invalid_formula_is_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.billing.meters.create(
            {"display_name": "x", "event_name": "x", "default_aggregation": {"formula": "max"}}
        )
    assert exc.value.param == "default_aggregation[formula]"


@pytest.mark.parametrize("key", ["sk_live_123", "pk_test_123", "sk_test_", "bogus"])
def test_bad_api_keys_get_401(fake: FakeStripe, key: str) -> None:
    with pytest.raises(stripe.AuthenticationError):
        make_client(fake, api_key=key).v1.customers.list()


def test_restricted_test_keys_work(fake: FakeStripe) -> None:
    assert make_client(fake, api_key="rk_test_abc").v1.customers.list().data == []


def test_missing_authorization_header(fake: FakeStripe) -> None:
    status, body, headers = http(fake.url, "GET", "/v1/customers")
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert headers["Request-Id"].startswith("req_")


def test_unknown_route_is_404(fake: FakeStripe, client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.raw_request("get", "/v1/charges_of_the_light_brigade")
    assert exc.value.http_status == 404
    assert exc.value.code == "resource_missing"


def test_every_response_has_a_request_id(client: stripe.StripeClient) -> None:
    created = client.v1.customers.create({})
    assert created.last_response is not None
    assert created.last_response.request_id.startswith("req_")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.customers.retrieve("cus_nope")
    assert exc.value.request_id is not None
    assert exc.value.request_id.startswith("req_")


def test_request_log_and_counts(client: stripe.StripeClient, fake: FakeStripe) -> None:
    client.v1.customers.create({})
    client.v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.retrieve("cus_nope")
    assert [(r.method, r.path, r.status) for r in fake.request_log] == [
        ("POST", "/v1/customers", 200),
        ("GET", "/v1/customers", 200),
        ("GET", "/v1/customers/cus_nope", 404),
    ]
    assert fake.request_count("/v1/customers") == 3
    assert fake.request_count("/v1/customers", method="POST") == 1
    assert fake.request_count() == 3


def test_creators_return_private_copies(fake: FakeStripe, customer: str) -> None:
    price = fake.create_price(unit_amount=500)
    sub = fake.create_subscription(customer, price["id"], quantity=2)
    sub["items"]["data"][0]["quantity"] = 99
    assert fake.subscription_item(sub["items"]["data"][0]["id"])["quantity"] == 2
