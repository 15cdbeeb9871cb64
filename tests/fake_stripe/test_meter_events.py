"""Synchronous meter events (v1 and v2 single) and their rules."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.fake_stripe.helpers import make_client, wait_until

DAY = 86_400


def send(
    client: stripe.StripeClient, customer: str, value: str = "1", **extra: Any
) -> stripe.billing.MeterEvent:
    params: dict[str, Any] = {
        "event_name": "api_calls",
        "payload": {"stripe_customer_id": customer, "value": value},
        **extra,
    }
    return client.v1.billing.meter_events.create(params)


def refused(client: stripe.StripeClient, customer: str, **kw: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        send(client, customer, **kw)
    assert exc.value.http_status == 400
    return exc.value


@pytest.mark.usefixtures("meter")
def test_accepted_event_is_kept_and_counted(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    ts = int(fake.clock.now()) - 60
    event = send(client, customer, "25", identifier="evt-1", timestamp=ts)
    assert event.object == "billing.meter_event"
    assert event.identifier == "evt-1"
    assert event.timestamp == ts
    send(client, customer, "-5")
    assert fake.meter_event_total("api_calls", customer) == 20
    [first, second] = fake.meter_events("api_calls", customer)
    assert (first["identifier"], first["value"], first["timestamp"]) == ("evt-1", 25, ts)
    assert second["identifier"]  # generated when absent
    assert fake.meter_events(customer="cus_other") == []


@pytest.mark.usefixtures("meter")
def test_duplicate_identifier_is_refused_without_retry(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    send(client, customer, "3", identifier="evt-1")
    exc = refused(client, customer, value="3", identifier="evt-1")
    assert exc.user_message == "An event already exists with identifier evt-1."
    assert exc.headers is not None
    assert exc.headers["Stripe-Should-Retry"] == "false"
    assert fake.duplicate_identifier_rejections == 1
    assert fake.meter_event_total("api_calls", customer) == 3


@pytest.mark.usefixtures("meter")
def test_identifier_is_reusable_after_the_24_hour_window(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    send(client, customer, "3", identifier="evt-1")
    fake.clock.advance(DAY + 1)
    send(client, customer, "3", identifier="evt-1")
    assert fake.meter_event_total("api_calls", customer) == 6


def test_event_without_meter_is_refused(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    exc = refused(client, customer)
    assert exc.code == "no_meter"
    assert "meter" in (exc.user_message or "")
    meter = fake.create_meter("api_calls")
    client.v1.billing.meters.deactivate(meter["id"])
    assert refused(client, customer).code == "archived_meter"
    assert fake.meter_events() == []


@pytest.mark.usefixtures("meter")
def test_customer_must_exist(client: stripe.StripeClient) -> None:
    exc = refused(client, "cus_missing")
    assert exc.code == "meter_event_customer_not_found"
    assert exc.param == "payload[stripe_customer_id]"


@pytest.mark.usefixtures("meter")
@pytest.mark.parametrize("value", ["1.5", "abc", "", "1e3"])
def test_value_must_be_a_whole_number(
    client: stripe.StripeClient, customer: str, value: str
) -> None:
    assert refused(client, customer, value=value).code == "meter_event_invalid_value"


@pytest.mark.usefixtures("meter")
def test_value_has_at_most_15_significant_digits(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    send(client, customer, "999999999999999")
    send(client, customer, "-000999999999999999")
    exc = refused(client, customer, value="1000000000000000")
    assert exc.code == "meter_event_value_too_many_digits"
    assert fake.meter_event_total("api_calls", customer) == 0


@pytest.mark.usefixtures("meter")
def test_timestamp_within_35_days(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    now = int(fake.clock.now())
    send(client, customer, timestamp=now - 35 * DAY + 60)
    exc = refused(client, customer, timestamp=now - 35 * DAY - 60)
    assert exc.code == "timestamp_too_far_in_past"
    assert "35 days" in (exc.user_message or "")


@pytest.mark.usefixtures("meter")
def test_timestamp_at_most_5_minutes_ahead(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    now = int(fake.clock.now())
    send(client, customer, timestamp=now + 240)
    exc = refused(client, customer, timestamp=now + 360)
    assert exc.code == "timestamp_in_future"
    assert "5 minutes" in (exc.user_message or "")


@pytest.mark.usefixtures("meter")
def test_time_rules_follow_the_fake_clock(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    old = int(fake.clock.now()) - 40 * DAY
    fake.clock.set(old + 60)
    send(client, customer, timestamp=old)
    assert fake.meter_events()[0]["timestamp"] == old


def test_custom_payload_keys(client: stripe.StripeClient, fake: FakeStripe, customer: str) -> None:
    fake.create_meter("tokens", customer_key="account", value_key="tokens")
    client.v1.billing.meter_events.create(
        {"event_name": "tokens", "payload": {"account": customer, "tokens": "7"}}
    )
    assert fake.meter_event_total("tokens", customer) == 7
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.billing.meter_events.create(
            {"event_name": "tokens", "payload": {"stripe_customer_id": customer, "value": "1"}}
        )
    assert exc.value.code == "meter_event_no_customer_defined"


def test_count_meters_need_no_value(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.create_meter("logins", formula="count")
    for _ in range(3):
        client.v1.billing.meter_events.create(
            {"event_name": "logins", "payload": {"stripe_customer_id": customer}}
        )
    assert fake.meter_event_total("logins", customer) == 3


@pytest.mark.usefixtures("meter")
def test_cancel_within_24_hours(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    send(client, customer, "10", identifier="evt-1")
    send(client, customer, "5", identifier="evt-2")
    fake.clock.advance(DAY - 60)
    adjustment = client.v1.billing.meter_event_adjustments.create(
        {"event_name": "api_calls", "type": "cancel", "cancel": {"identifier": "evt-1"}}
    )
    assert adjustment.object == "billing.meter_event_adjustment"
    assert adjustment.status == "complete"
    assert fake.meter_event_total("api_calls", customer) == 5
    assert [e["identifier"] for e in fake.meter_events()] == ["evt-2"]
    fake.clock.advance(120)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.billing.meter_event_adjustments.create(
            {"event_name": "api_calls", "type": "cancel", "cancel": {"identifier": "evt-2"}}
        )
    assert "24 hours" in (exc.value.user_message or "")
    assert fake.meter_event_total("api_calls", customer) == 5


@pytest.mark.usefixtures("meter")
def test_cancelling_again_is_refused_saying_it_is_already_canceled(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    send(client, customer, "10", identifier="evt-1")
    cancel = {"event_name": "api_calls", "type": "cancel", "cancel": {"identifier": "evt-1"}}
    client.v1.billing.meter_event_adjustments.create(cancel)  # type: ignore[arg-type]

    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v1.billing.meter_event_adjustments.create(cancel)  # type: ignore[arg-type]

    assert exc.value.http_status == 400
    assert "has already been canceled" in (exc.value.user_message or "")
    assert fake.meter_event_total("api_calls", customer) == 0


@pytest.mark.usefixtures("meter")
def test_cancel_unknown_identifier(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meter_event_adjustments.create(
            {"event_name": "api_calls", "type": "cancel", "cancel": {"identifier": "nope"}}
        )


@pytest.mark.usefixtures("meter")
def test_v2_single_event_is_validated_synchronously(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    ts = int(fake.clock.now()) // 60 * 60 - 120
    event = client.v2.billing.meter_events.create(
        {
            "event_name": "api_calls",
            "payload": {"stripe_customer_id": customer, "value": "4"},
            "identifier": "v2-1",
            "timestamp": datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z"),
        }
    )
    assert event.object == "v2.billing.meter_event"
    assert event.identifier == "v2-1"
    assert event.timestamp.endswith("Z")
    assert fake.meter_events()[0]["timestamp"] == ts
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v2.billing.meter_events.create(
            {
                "event_name": "api_calls",
                "payload": {"stripe_customer_id": customer, "value": "4"},
                "identifier": "v2-1",
            }
        )
    assert "already exists" in (exc.value.user_message or "")
    with pytest.raises(stripe.InvalidRequestError) as exc:
        client.v2.billing.meter_events.create(
            {
                "event_name": "api_calls",
                "payload": {"stripe_customer_id": customer, "value": "4"},
                "timestamp": "2000-01-01T00:00:00Z",
            }
        )
    assert exc.value.code == "timestamp_too_far_in_past"
    assert fake.meter_event_total("api_calls", customer) == 4


@pytest.mark.usefixtures("meter")
def test_v2_cancel_within_24_hours(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    send(client, customer, "10", identifier="evt-1")
    send(client, customer, "5", identifier="evt-2")
    adjustment = client.v2.billing.meter_event_adjustments.create(
        {"event_name": "api_calls", "type": "cancel", "cancel": {"identifier": "evt-1"}}
    )
    assert adjustment.object == "v2.billing.meter_event_adjustment"
    assert fake.meter_event_total("api_calls", customer) == 5
    fake.clock.advance(DAY + 1)
    with pytest.raises(stripe.InvalidRequestError):
        client.v2.billing.meter_event_adjustments.create(
            {"event_name": "api_calls", "type": "cancel", "cancel": {"identifier": "evt-2"}}
        )
    assert fake.meter_event_total("api_calls", customer) == 5


@pytest.mark.usefixtures("meter")
def test_sequential_requests_never_overlap(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    for _ in range(3):
        send(client, customer)
    assert fake.max_concurrency_per_customer_meter == {("api_calls", customer): 1}


@pytest.mark.usefixtures("meter")
def test_concurrent_requests_for_one_customer_are_counted(fake: FakeStripe, customer: str) -> None:
    key = ("api_calls", customer)
    # The first request sleeps in injected latency until the faults are cleared.
    fake.faults.add("latency", latency=30.0, route="/v1/billing/meter_events", times=1)
    slow = threading.Thread(target=send, args=(make_client(fake), customer))
    slow.start()
    wait_until(lambda: fake.max_concurrency_per_customer_meter.get(key) == 1)
    send(make_client(fake), customer)  # overlaps the sleeping one
    fake.faults.clear()
    slow.join(timeout=10)
    assert not slow.is_alive()
    assert fake.max_concurrency_per_customer_meter[key] == 2
    assert fake.meter_event_total("api_calls", customer) == 2


@pytest.mark.usefixtures("meter")
def test_events_from_elsewhere_are_made_and_cancelled_without_http_or_faults(
    fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("outage")

    made = fake.record_meter_event("api_calls", customer, 7, identifier="other-app-1")
    fake.record_meter_event("api_calls", customer, 2)
    assert fake.meter_event_total("api_calls", customer) == 9
    fake.cancel_meter_event("api_calls", "other-app-1")

    assert made["identifier"] == "other-app-1"
    assert fake.meter_event_total("api_calls", customer) == 2
    assert fake.request_log == []
    with pytest.raises(Exception, match="already exists with identifier other-app-1"):
        fake.record_meter_event("api_calls", customer, 1, identifier="other-app-1")


def test_a_meter_deactivated_from_elsewhere_refuses_events_until_reactivated(
    fake: FakeStripe, client: stripe.StripeClient, customer: str, meter: dict[str, Any]
) -> None:
    fake.deactivate_meter(meter["id"])
    with pytest.raises(stripe.InvalidRequestError, match="its meter is deactivated"):
        send(client, customer, 1)

    fake.reactivate_meter(meter["id"])
    send(client, customer, 2)

    assert fake.meter_event_total("api_calls", customer) == 2
