"""Stripe's asynchronous meter error reports: thin events an Event Destination receives, the
full events at GET /v2/core/events/{id}, and their signatures, checked with stripe-python's
own parser (``client.parse_event_notification``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.fake_stripe.helpers import http, make_client
from tests.fake_stripe.test_stream import event, iso, stream, token

SECRET = "whsec_fake_destination"
OTHER_SECRET = "whsec_rotated_in"


def refuse_some(client: stripe.StripeClient, fake: FakeStripe, customer: str) -> None:
    """One stream request with one good event and refused ones on two meters and on a name
    no meter counts."""
    fake.create_meter("uploads", formula="sum")
    stream(
        client,
        token(client),
        [
            event(customer, "ok", "5"),
            event("cus_missing", "no-customer-1"),
            event("cus_missing", "no-customer-2"),
            event(customer, "bad-value", "1.5"),
            {**event(customer, "late", timestamp=iso(fake.clock.now() - 40 * 86_400))},
            {**event("cus_missing", "upload-no-customer"), "event_name": "uploads"},
            {**event(customer, "no-meter"), "event_name": "unknown"},
        ],
    )


def samples(full: dict[str, Any]) -> dict[str, set[str]]:
    """Error code -> the identifiers its samples name."""
    return {
        error_type["code"]: {s["request"]["identifier"] for s in error_type["sample_errors"]}
        for error_type in full["data"]["reason"]["error_types"]
    }


def test_refused_stream_events_become_one_event_per_meter(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, meter: dict[str, Any]
) -> None:
    refuse_some(client, fake, customer)

    deliveries = fake.emit_meter_error_events(SECRET)

    by_type = {}
    for delivery in deliveries:
        notification = client.parse_event_notification(delivery.body, delivery.signature, SECRET)
        assert (notification.id, notification.type) == (delivery.id, delivery.type)
        assert notification.id.startswith("evt_")
        by_type.setdefault(notification.type, []).append(notification)
    reports = by_type["v1.billing.meter.error_report_triggered"]
    assert [n.type for n in by_type["v1.billing.meter.no_meter_found"]] == [
        "v1.billing.meter.no_meter_found"
    ]
    assert len(reports) == 2
    api_calls = next(n for n in reports if n.related_object.id == meter["id"])
    assert isinstance(api_calls, stripe.events.V1BillingMeterErrorReportTriggeredEventNotification)
    assert api_calls.related_object.url == f"/v1/billing/meters/{meter['id']}"
    assert api_calls.fetch_related_object().id == meter["id"]

    full = api_calls.fetch_event()

    assert isinstance(full, stripe.events.V1BillingMeterErrorReportTriggeredEvent)
    assert full.data.reason.error_count == 4
    assert full.data.developer_message_summary == "There are 4 invalid events"
    assert samples(full.to_dict()) == {
        "meter_event_customer_not_found": {"no-customer-1", "no-customer-2"},
        "meter_event_invalid_value": {"bad-value"},
        "timestamp_too_far_in_past": {"late"},
    }
    assert full.data.validation_start <= full.data.validation_end <= full.created
    no_meter = by_type["v1.billing.meter.no_meter_found"][0].fetch_event()
    assert samples(no_meter.to_dict()) == {"no_meter": {"no-meter"}}


@pytest.mark.usefixtures("meter")
def test_thin_events_carry_what_stripe_sends_and_no_data(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    refuse_some(client, fake, customer)
    before = fake.clock.now()

    delivery = fake.emit_meter_error_events(SECRET)[0]

    body = json.loads(delivery.body)
    assert set(body) == {
        "id",
        "object",
        "context",
        "created",
        "livemode",
        "reason",
        "related_object",
        "type",
    }
    assert (body["object"], body["livemode"], body["context"]) == ("v2.core.event", False, None)
    assert datetime.fromisoformat(body["created"]).timestamp() >= before - 0.001
    assert delivery.headers["Stripe-Signature"] == delivery.signature
    assert delivery.signature.startswith(f"t={delivery.signed_at},v1=")


@pytest.mark.usefixtures("meter")
def test_each_report_is_emitted_once(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    refuse_some(client, fake, customer)
    assert len(fake.emit_meter_error_events(SECRET)) == 3

    assert fake.emit_meter_error_events(SECRET) == []
    stream(client, token(client), [event("cus_missing", "later")])
    (later,) = fake.emit_meter_error_events(SECRET)
    assert samples(make_client(fake).v2.core.events.retrieve(later.id).to_dict()) == {
        "meter_event_customer_not_found": {"later"}
    }


@pytest.mark.usefixtures("meter")
def test_samples_can_be_capped_as_stripes_are(
    client: stripe.StripeClient, fake: FakeStripe
) -> None:
    stream(client, token(client), [event("cus_missing", f"e{i}") for i in range(5)])

    (delivery,) = fake.emit_meter_error_events(SECRET, max_samples=2)

    full = client.v2.core.events.retrieve(delivery.id).to_dict()
    (error_type,) = full["data"]["reason"]["error_types"]
    assert (error_type["error_count"], len(error_type["sample_errors"])) == (5, 2)
    with pytest.raises(ValueError, match="max_samples"):
        fake.emit_meter_error_events(SECRET, max_samples=0)


@pytest.mark.usefixtures("meter")
def test_signatures_stripe_python_refuses(client: stripe.StripeClient, fake: FakeStripe) -> None:
    stream(client, token(client), [event("cus_missing", "e1")])
    (delivery,) = fake.emit_meter_error_events([OTHER_SECRET, SECRET])

    for secret in (SECRET, OTHER_SECRET):  # one v1 signature per secret, as in a rotation
        client.parse_event_notification(delivery.body, delivery.signature, secret)
    assert delivery.signature.count("v1=") == 2
    stale = delivery.signed(delivery.signed_at - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        client.parse_event_notification(delivery.body, stale, SECRET)
    forged = delivery.signed(delivery.signed_at, ["whsec_guessed"])
    with pytest.raises(stripe.SignatureVerificationError, match="expected signature"):
        client.parse_event_notification(delivery.body, forged, SECRET)
    with pytest.raises(ValueError, match="signing secret"):
        fake.emit_meter_error_events([])


@pytest.mark.usefixtures("meter")
def test_events_are_retrievable_for_30_days(client: stripe.StripeClient, fake: FakeStripe) -> None:
    stream(client, token(client), [event("cus_missing", "e1")])
    (delivery,) = fake.emit_meter_error_events(SECRET)

    fake.clock.advance(30 * 86_400 - 60)
    assert client.v2.core.events.retrieve(delivery.id).id == delivery.id
    fake.clock.advance(120)
    with pytest.raises(stripe.InvalidRequestError) as gone:
        client.v2.core.events.retrieve(delivery.id)
    assert gone.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError):
        client.v2.core.events.retrieve("evt_test_unknown")


@pytest.mark.usefixtures("meter")
def test_events_from_the_control_endpoint(client: stripe.StripeClient, fake: FakeStripe) -> None:
    stream(client, token(client), [event("cus_missing", "e1")])

    status, body, _ = http(
        fake.url, "POST", "/_fake/meter_error_events", {"secret": SECRET, "max_samples": 1}
    )

    assert status == 200
    (delivered,) = body["events"]
    notification = client.parse_event_notification(
        delivered["body"], delivered["signature"], SECRET
    )
    assert notification.id == delivered["id"]
    status, body, _ = http(fake.url, "POST", "/_fake/meter_error_events", {})
    assert status == 400
    assert "signing secret" in body["error"]["message"]


@pytest.mark.usefixtures("meter")
def test_saved_state_keeps_events_and_what_was_emitted(
    client: stripe.StripeClient, fake: FakeStripe, tmp_path: Path
) -> None:
    stream(client, token(client), [event("cus_missing", "e1")])
    (delivery,) = fake.emit_meter_error_events(SECRET)
    path = tmp_path / "stripe.json"
    fake.save_state(path)
    fake.reset()

    fake.load_state(path)

    assert client.v2.core.events.retrieve(delivery.id).id == delivery.id
    assert fake.emit_meter_error_events(SECRET) == []
