"""The v2 high-throughput stream: sessions, batching and asynchronous validation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def event(customer: str, identifier: str, value: str = "1", **extra: Any) -> dict[str, Any]:
    return {
        "event_name": "api_calls",
        "payload": {"stripe_customer_id": customer, "value": value},
        "identifier": identifier,
        **extra,
    }


def token(client: stripe.StripeClient) -> str:
    return client.v2.billing.meter_event_session.create().authentication_token


def stream(client: stripe.StripeClient, tok: str, events: list[dict[str, Any]]) -> None:
    client.v2.billing.meter_event_stream.create({"events": events}, {"api_key": tok})


def test_session_shape(client: stripe.StripeClient, fake: FakeStripe) -> None:
    session = client.v2.billing.meter_event_session.create()
    assert session.object == "v2.billing.meter_event_session"
    assert session.authentication_token
    assert session.livemode is False
    created = datetime.fromisoformat(session.created).timestamp()
    expires = datetime.fromisoformat(session.expires_at).timestamp()
    assert expires - created == pytest.approx(15 * 60, abs=1)


@pytest.mark.usefixtures("meter")
def test_stream_accepts_batches(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    tok = token(client)
    ts = fake.clock.now() - 3600
    stream(client, tok, [event(customer, f"e{i}", "2", timestamp=iso(ts)) for i in range(100)])
    assert fake.meter_event_total("api_calls", customer) == 200
    assert {e["timestamp"] for e in fake.meter_events()} == {int(ts)}
    assert {e["source"] for e in fake.meter_events()} == {"stream"}


@pytest.mark.usefixtures("meter")
def test_more_than_100_events_is_refused(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        stream(client, token(client), [event(customer, f"e{i}") for i in range(101)])
    assert exc.value.http_status == 400
    assert fake.meter_events() == []


def test_empty_batch_is_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        stream(client, token(client), [])


@pytest.mark.usefixtures("meter")
def test_expired_session_raises_temporary_session_expired(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    tok = token(client)
    fake.clock.advance(14 * 60)
    stream(client, tok, [event(customer, "e1")])
    fake.clock.advance(60)
    with pytest.raises(stripe.TemporarySessionExpiredError) as exc:
        stream(client, tok, [event(customer, "e2")])
    assert exc.value.http_status == 401
    assert exc.value.code == "billing_meter_event_session_expired"
    stream(client, token(client), [event(customer, "e2")])
    assert fake.meter_event_total("api_calls", customer) == 2


def test_stream_needs_a_session_token(client: stripe.StripeClient, customer: str) -> None:
    with pytest.raises(stripe.AuthenticationError):
        stream(client, "sk_test_not_a_session", [event(customer, "e1")])


@pytest.mark.usefixtures("meter")
def test_invalid_events_become_error_reports(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    now = fake.clock.now()
    stream(
        client,
        token(client),
        [
            event(customer, "ok", "5"),
            event("cus_missing", "no-customer"),
            {**event(customer, "no-meter"), "event_name": "unknown"},
            event(customer, "too-old", timestamp=iso(now - 36 * 86_400)),
            event(customer, "future", timestamp=iso(now + 3600)),
            event(customer, "bad-value", "1.5"),
        ],
    )
    assert fake.meter_event_total("api_calls", customer) == 5
    assert {(r["identifier"], r["code"]) for r in fake.error_reports} == {
        ("no-customer", "meter_event_customer_not_found"),
        ("no-meter", "no_meter"),
        ("too-old", "timestamp_too_far_in_past"),
        ("future", "timestamp_in_future"),
        ("bad-value", "meter_event_invalid_value"),
    }


@pytest.mark.usefixtures("meter")
def test_duplicates_are_dropped_silently(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    tok = token(client)
    stream(client, tok, [event(customer, "a", "1"), event(customer, "a", "1")])
    stream(client, tok, [event(customer, "a", "1"), event(customer, "b", "1")])
    assert fake.meter_event_total("api_calls", customer) == 2
    assert fake.duplicate_identifiers_ignored == 2
    assert fake.duplicate_identifier_rejections == 0
    assert fake.error_reports == []


@pytest.mark.usefixtures("meter")
def test_malformed_timestamp_fails_the_request(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        stream(client, token(client), [event(customer, "a", timestamp="yesterday")])
    assert fake.meter_events() == []
