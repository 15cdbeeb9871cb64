"""StripeBackend against the fake Stripe server: configuration, modes, seats, cancellation,
and secrets kept out of everything it returns."""

from __future__ import annotations

import time
from typing import Any

import pytest
import stripe

from billflow_usage.backends import get_backend
from billflow_usage.backends.base import Cancellation, Outcome, QuantityPush
from billflow_usage.backends.locmem import LocMemBackend
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.backends.conftest import event


@pytest.fixture
def backend(fake_stripe: FakeStripe) -> Any:
    backend = StripeBackend()
    yield backend
    backend.close()


def test_it_is_the_default_backend_and_reads_its_settings(
    fake_stripe: FakeStripe, settings: Any
) -> None:
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "METER_API": "v2"}
    del settings.BILLFLOW_USAGE["BACKEND"]

    backend = get_backend()

    assert isinstance(backend, StripeBackend)
    assert backend.meter_api == "v2"
    assert repr(backend) == "<StripeBackend meter_api='v2'>"


@pytest.mark.parametrize(
    ("meter_api", "one_call", "items"),
    [("v1", True, False), ("v2", False, False), ("legacy", True, True)],
)
def test_what_each_mode_asks_of_the_delivery_engine(
    fake_stripe: FakeStripe, settings: Any, meter_api: str, one_call: bool, items: bool
) -> None:
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "DELIVERY_CONCURRENCY": 3}

    backend = StripeBackend(meter_api=meter_api)

    # Only the v2 stream lets workers hold one customer's events at once.
    assert backend.one_call_per_customer_meter is one_call
    assert backend.needs_subscription_items is items
    assert backend.max_concurrency == 3
    assert StripeBackend(meter_api=meter_api, max_concurrency=5).max_concurrency == 5


def test_without_its_own_key_it_uses_dj_stripes(
    fake_stripe: FakeStripe, settings: Any, customer: str, meter: str
) -> None:
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "STRIPE_API_KEY": None}
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_from_djstripe"

    [result] = StripeBackend().send_meter_events([event(customer, "dj-1")])

    assert result.outcome == Outcome.DELIVERED
    assert fake_stripe.meter_event_total("api_calls", customer) == 1


def test_a_rejected_key_never_shows_in_results(fake_stripe: FakeStripe, customer: str) -> None:
    secret = "sk_live_51SuperSecretValue0123456789"
    backend = StripeBackend(api_key=secret)

    [result] = backend.send_meter_events([event(customer, "k-1")])
    push = backend.push_quantity(QuantityPush("si_x", 1, "none", "k"))

    assert (result.outcome, result.code) == (Outcome.RETRY, "credentials_rejected")
    assert push.code == "credentials_rejected"
    for text in (result.message, result.code, push.message, repr(backend)):
        assert "SuperSecretValue" not in text
    assert "sk_live_" in result.message  # Stripe's own masked hint is kept


@pytest.mark.parametrize("meter_api", ["v1", "v2"])
def test_each_event_gets_one_result_by_identifier(
    fake_stripe: FakeStripe, customer: str, meter: str, meter_api: str
) -> None:
    backend = StripeBackend(meter_api=meter_api)
    events = [event(customer, f"id-{n}", n) for n in range(1, 6)]

    results = backend.send_meter_events(events)

    assert sorted(r.key for r in results) == sorted(e.identifier for e in events)
    assert {r.outcome for r in results} == {Outcome.DELIVERED}
    assert fake_stripe.meter_event_total("api_calls", customer) == 15
    assert backend.send_meter_events([]) == []


def test_v2_renews_its_session_before_it_runs_out(
    fake_stripe: FakeStripe, customer: str, meter: str
) -> None:
    backend = StripeBackend(meter_api="v2")
    backend.send_meter_events([event(customer, "s-1")])
    backend._stream._renew_at = 0.0  # the local clock says the session is nearly over

    backend.send_meter_events([event(customer, "s-2")])

    assert fake_stripe.request_count("/v2/billing/meter_event_session") == 2
    assert fake_stripe.request_count("/v2/billing/meter_event_stream") == 2  # no 401 first


def test_v2_session_failures_become_results(
    fake_stripe: FakeStripe, customer: str, meter: str
) -> None:
    fake_stripe.faults.add("status", status=503, route="/v2/billing/meter_event_session")

    results = StripeBackend(meter_api="v2").send_meter_events(
        [event(customer, "f-1"), event(customer, "f-2")]
    )

    assert [(r.key, r.outcome, r.code) for r in results] == [
        ("f-1", Outcome.RETRY, "http_503"),
        ("f-2", Outcome.RETRY, "http_503"),
    ]


def test_push_quantity_sets_the_item_with_proration(
    fake_stripe: FakeStripe, backend: StripeBackend, customer: str
) -> None:
    price = fake_stripe.create_price()
    item = fake_stripe.create_subscription(customer, price["id"], quantity=1)["items"]["data"][0]

    result = backend.push_quantity(QuantityPush(item["id"], 9, "none", "bfu-qty-test-1"))

    assert (result.key, result.outcome) == (item["id"], Outcome.DELIVERED)
    assert fake_stripe.subscription_item(item["id"])["quantity"] == 9
    assert fake_stripe.quantity_updates[0]["proration_behavior"] == "none"


def test_push_quantity_to_a_metered_item_fails_with_stripes_message(
    fake_stripe: FakeStripe, backend: StripeBackend, customer: str
) -> None:
    price = fake_stripe.create_price(meter=fake_stripe.create_meter("storage")["id"])
    item = fake_stripe.create_subscription(customer, price["id"])["items"]["data"][0]

    result = backend.push_quantity(QuantityPush(item["id"], 2, "create_prorations", "k-m"))

    assert result.outcome == Outcome.FAILED
    assert "Quantity should not be specified" in result.message


def test_cancel_meter_event_within_the_window(
    fake_stripe: FakeStripe, backend: StripeBackend, customer: str, meter: str
) -> None:
    backend.send_meter_events([event(customer, "c-1", 5), event(customer, "c-2", 2)])

    result = backend.cancel_meter_event(Cancellation("api_calls", "c-1"))
    unknown = backend.cancel_meter_event(Cancellation("api_calls", "nope"))

    assert result.outcome == Outcome.DELIVERED
    assert fake_stripe.meter_event_total("api_calls", customer) == 2
    assert (unknown.outcome, unknown.code) == (Outcome.FAILED, "resource_missing")


def test_cancel_is_refused_for_legacy_usage_records(fake_stripe: FakeStripe) -> None:
    result = StripeBackend(meter_api="legacy").cancel_meter_event(Cancellation("x", "y"))

    assert (result.outcome, result.code) == (Outcome.FAILED, "unsupported")


@pytest.mark.parametrize("meter_api", ["v1", "v2", "legacy"])
def test_a_view_past_its_deadline_starts_no_request(
    fake_stripe: FakeStripe, customer: str, meter: str, meter_api: str
) -> None:
    backend = StripeBackend(meter_api=meter_api)
    view = backend.within(time.monotonic())

    results = view.send_meter_events([event(customer, "d-1"), event(customer, "d-2")])

    assert [(r.key, r.outcome) for r in results] == [
        ("d-1", Outcome.NOT_SENT),
        ("d-2", Outcome.NOT_SENT),
    ]
    assert fake_stripe.request_count() == 0
    view.close()  # a view shares the backend's connections and threads: nothing closes
    [result] = backend.send_meter_events([event(customer, "d-3")])
    assert result.outcome != Outcome.NOT_SENT
    assert backend.within(None) is backend
    backend.close()


def test_other_sinks_cannot_bound_their_calls_and_ignore_deadlines() -> None:
    sink = LocMemBackend()

    assert sink.within(time.monotonic()) is sink


def test_a_meter_stripe_refuses_to_create_raises_its_error(fake_stripe: FakeStripe) -> None:
    backend = StripeBackend()

    with pytest.raises(stripe.InvalidRequestError):
        backend.create_meter(event_name="exports", formula="median", display_name="Exports")

    assert backend.list_meters() == []
    backend.close()
