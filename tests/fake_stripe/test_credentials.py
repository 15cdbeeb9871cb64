"""Credentials Stripe refuses: revoked keys (401), restricted keys without the permission
(403) and v2 sessions a restarted Stripe no longer knows (401)."""

from __future__ import annotations

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.fake_stripe.helpers import API_KEY, http

pytestmark = pytest.mark.usefixtures("meter")


def send(client: stripe.StripeClient, customer: str, identifier: str = "e-1") -> None:
    client.v1.billing.meter_events.create(
        {
            "event_name": "api_calls",
            "identifier": identifier,
            "payload": {"stripe_customer_id": customer, "value": "1"},
        }
    )


def stream(client: stripe.StripeClient, token: str, customer: str, identifier: str) -> None:
    event = {
        "event_name": "api_calls",
        "identifier": identifier,
        "payload": {"stripe_customer_id": customer, "value": "1"},
    }
    client.v2.billing.meter_event_stream.create({"events": [event]}, {"api_key": token})


def test_a_revoked_key_gets_stripes_401_until_restored(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.keys.revoke(API_KEY)

    with pytest.raises(stripe.AuthenticationError) as exc:
        send(client, customer)
    assert exc.value.http_status == 401
    assert exc.value.user_message == f"Invalid API Key provided: sk_test_****{API_KEY[-4:]}"
    assert API_KEY not in str(exc.value)
    with pytest.raises(stripe.AuthenticationError):
        client.v2.billing.meter_event_session.create()

    fake.keys.restore(API_KEY)
    send(client, customer)
    assert fake.meter_event_total("api_calls", customer) == 1


def test_a_restricted_key_without_the_permission_gets_a_403_for_that_endpoint_only(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.keys.deny(API_KEY, "/v1/billing/meter_events", method="POST")

    with pytest.raises(stripe.PermissionError) as exc:
        send(client, customer)
    assert exc.value.http_status == 403
    assert "does not have the required permissions" in str(exc.value.user_message)
    assert "'rak_billing_meter_event_write' permission" in str(exc.value.user_message)
    client.v1.billing.meters.list()  # other endpoints still work

    fake.keys.allow(API_KEY)
    send(client, customer)
    assert fake.meter_event_total("api_calls", customer) == 1


def test_a_restarted_stripe_forgets_sessions_and_answers_their_tokens_401(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    token = client.v2.billing.meter_event_session.create().authentication_token
    stream(client, token, customer, "e-1")

    assert fake.forget_sessions() == 1

    with pytest.raises(stripe.AuthenticationError) as exc:  # not "expired": unknown
        stream(client, token, customer, "e-2")
    assert exc.value.http_status == 401
    assert not isinstance(exc.value, stripe.TemporarySessionExpiredError)
    stream(
        client, client.v2.billing.meter_event_session.create().authentication_token, customer, "e-2"
    )
    assert fake.meter_event_total("api_calls", customer) == 2


def test_keys_and_sessions_through_the_control_api(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    masked = f"sk_test_****{API_KEY[-4:]}"
    status, body, _ = http(fake.url, "POST", "/_fake/keys", {"revoke": API_KEY})
    assert (status, body["revoked"]) == (200, [masked])
    with pytest.raises(stripe.AuthenticationError):
        send(client, customer)
    http(fake.url, "POST", "/_fake/keys", {"restore": API_KEY})
    http(fake.url, "POST", "/_fake/keys", {"deny": API_KEY, "route": "/v1/billing/*"})
    _, body, _ = http(fake.url, "GET", "/_fake/keys")
    assert body == {
        "revoked": [],
        "restricted": {masked: [{"route": "/v1/billing/*", "method": None}]},
    }
    assert fake.summary()["keys"] == body
    with pytest.raises(stripe.PermissionError):
        send(client, customer)
    http(fake.url, "POST", "/_fake/keys", {"allow": API_KEY})
    send(client, customer)

    token = client.v2.billing.meter_event_session.create().authentication_token
    status, body, _ = http(fake.url, "DELETE", "/_fake/sessions")
    assert (status, body) == (200, {"forgotten": 1})
    with pytest.raises(stripe.AuthenticationError):
        stream(client, token, customer, "e-2")


def test_a_bad_keys_request_is_a_400(fake: FakeStripe) -> None:
    status, body, _ = http(fake.url, "POST", "/_fake/keys", {"revoke": API_KEY, "allow": API_KEY})
    assert status == 400
    assert "one of" in body["error"]["message"]


def test_reset_accepts_every_key_again(client: stripe.StripeClient, fake: FakeStripe) -> None:
    fake.keys.revoke(API_KEY)
    fake.reset()
    client.v1.customers.list()
