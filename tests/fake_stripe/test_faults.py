"""Fault injection: errors, rate limits, dropped answers, latency, outages and their mix."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.fake_stripe.helpers import http, make_client


def send(client: stripe.StripeClient, customer: str, **options: Any) -> Any:
    return client.v1.billing.meter_events.create(
        {"event_name": "api_calls", "payload": {"stripe_customer_id": customer, "value": "1"}},
        options,
    )


pytestmark = pytest.mark.usefixtures("meter")


def test_server_errors_for_the_next_n_requests(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("status", status=500, route="/v1/billing/meter_events", times=2)
    for _ in range(2):
        with pytest.raises(stripe.APIError) as exc:
            send(client, customer)
        assert exc.value.http_status == 500
        assert exc.value.headers is not None
        assert exc.value.headers["Stripe-Should-Retry"] == "true"
    send(client, customer)
    assert fake.meter_event_total("api_calls", customer) == 1
    assert fake.faults.counters["status_500"] == 2
    assert fake.faults.rules == []
    assert [r.fault for r in fake.request_log] == ["status_500", "status_500", None]


def test_should_retry_can_be_switched_off(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("status", status=503, should_retry=False, times=1)
    with pytest.raises(stripe.APIError) as exc:
        send(client, customer)
    assert exc.value.http_status == 503
    assert exc.value.headers is not None
    assert exc.value.headers["Stripe-Should-Retry"] == "false"


def test_rate_limit_with_error_code(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("status", status=429, code="lock_timeout", should_retry=True, times=1)
    fake.faults.add("status", status=429, times=1)
    with pytest.raises(stripe.RateLimitError) as exc:
        send(client, customer)
    assert exc.value.error is not None
    assert exc.value.error.code == "lock_timeout"
    assert exc.value.headers is not None
    assert exc.value.headers["Stripe-Should-Retry"] == "true"
    with pytest.raises(stripe.RateLimitError) as exc:
        send(client, customer)
    assert exc.value.error is not None
    assert exc.value.error.code == "rate_limit"
    assert exc.value.headers is not None
    assert "Stripe-Should-Retry" not in exc.value.headers
    assert fake.faults.counters["status_429"] == 2
    assert fake.meter_events() == []


def test_rate_limit_on_v2(client: stripe.StripeClient, fake: FakeStripe) -> None:
    fake.faults.add("status", status=429, route="/v2/*", times=1)
    with pytest.raises(stripe.RateLimitError):
        client.v2.billing.meter_event_session.create()


def test_client_retries_through_a_transient_error(fake: FakeStripe, customer: str) -> None:
    fake.faults.add("status", status=500, times=1)
    send(make_client(fake, max_network_retries=1), customer)
    assert fake.request_count("/v1/billing/meter_events") == 2
    assert fake.meter_event_total("api_calls", customer) == 1


def test_route_and_method_matching(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("status", status=500, route="/v1/billing/*")
    fake.faults.add("status", status=502, method="GET", route="/v1/customers*")
    client.v1.customers.create({})
    with pytest.raises(stripe.APIError):
        client.v1.customers.list()
    with pytest.raises(stripe.APIError):
        send(client, customer)


def test_drop_after_processing_keeps_the_effect(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.add("drop_after_processing", times=1)
    with pytest.raises(stripe.APIConnectionError):
        send(client, customer, idempotency_key="k1")
    assert fake.meter_event_total("api_calls", customer) == 1
    assert fake.request_log[-1].fault == "drop_after_processing"
    retried = send(client, customer, idempotency_key="k1")
    assert retried.last_response.headers["Idempotent-Replayed"] == "true"
    assert fake.meter_event_total("api_calls", customer) == 1
    assert fake.faults.counters["drop_after_processing"] == 1


def test_latency(client: stripe.StripeClient, fake: FakeStripe, customer: str) -> None:
    fake.faults.add("latency", latency=(0.001, 0.002), times=1)
    fake.faults.add("latency", latency=0.001, route="/nowhere")
    send(client, customer)
    send(client, customer)
    assert fake.faults.counters["latency"] == 1
    assert [r.fault for r in fake.request_log] == ["latency", None]
    assert fake.meter_event_total("api_calls", customer) == 2


def test_outage(client: stripe.StripeClient, fake: FakeStripe, customer: str) -> None:
    fake.faults.add("outage")
    with pytest.raises(stripe.APIConnectionError):
        send(client, customer)
    with pytest.raises(stripe.APIConnectionError):
        client.v2.billing.meter_event_session.create()
    assert fake.meter_events() == []
    assert [(r.status, r.fault) for r in fake.request_log] == [(0, "outage"), (0, "outage")]
    status, body, _ = http(fake.url, "GET", "/_fake/state")  # control stays reachable
    assert status == 200
    assert body["faults"]["counters"] == {"outage": 2}
    fake.faults.clear()
    send(client, customer)
    assert fake.meter_event_total("api_calls", customer) == 1


def run(client: stripe.StripeClient, customer: str, n: int) -> list[str]:
    """Send n events and name what the client saw for each."""
    outcomes = []
    for _ in range(n):
        try:
            send(client, customer)
            outcomes.append("ok")
        except stripe.RateLimitError:
            outcomes.append("429")
        except stripe.APIConnectionError:
            outcomes.append("dropped")
        except stripe.APIError:
            outcomes.append("500")
    return outcomes


def test_random_faults_are_reproducible(
    client: stripe.StripeClient, fake: FakeStripe, customer: str
) -> None:
    fake.faults.seed(42)
    fake.faults.add("status", status=500, rate=0.3)
    first = run(client, customer, 40)
    fake.reset()
    fake.create_meter("api_calls")
    fake.create_customer(id=customer)
    fake.faults.configure({"seed": 42, "faults": [{"kind": "status", "rate": 0.3}]})
    assert run(client, customer, 40) == first
    assert 0 < first.count("500") < 40
    assert fake.faults.counters["status_500"] == first.count("500")


def test_faults_compose(client: stripe.StripeClient, fake: FakeStripe, customer: str) -> None:
    fake.faults.configure(
        {
            "seed": 7,
            "faults": [
                {"kind": "status", "status": 500, "rate": 0.2},
                {"kind": "status", "status": 429, "rate": 0.05},
                {"kind": "drop_after_processing", "rate": 0.05},
                {"kind": "latency", "latency": [0.0, 0.001], "rate": 0.5},
            ],
        }
    )
    outcomes = Counter(run(client, customer, 120))
    counters = fake.faults.counters
    assert outcomes["500"] == counters["status_500"] > 0
    assert outcomes["429"] == counters["status_429"] > 0
    assert outcomes["dropped"] == counters["drop_after_processing"] > 0
    assert counters["latency"] > 0
    assert outcomes["ok"] + outcomes["dropped"] == fake.meter_event_total("api_calls", customer)
    assert fake.request_count("/v1/billing/meter_events") == 120


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "explode"},
        {"kind": "status", "times": 1, "rate": 0.5},
        {"kind": "status", "status": 404},
        {"kind": "latency", "status": 500},
        {"kind": "status", "rate": 1.5},
        {"kind": "latency", "latency": [0.2, 0.1]},
    ],
)
def test_bad_fault_specs_are_refused(fake: FakeStripe, spec: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by field
        fake.faults.configure(spec)
    assert fake.faults.rules == []
