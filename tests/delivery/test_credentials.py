"""A key Stripe refuses (401/403) or a v2 session it forgot is the account's problem, not the
events': rows wait as in an outage without using up their attempts, every batch says so
loudly, and everything goes through exactly once when the key works again."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from django.core.management import call_command

import billflow_usage
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from tests.delivery.conftest import Configure, make_due
from tests.factories import LicensedMetricFactory

pytestmark = pytest.mark.django_db

PENDING = UsageEvent.Status.PENDING
SESSION = "/v2/billing/meter_event_session"


def record(customer: str, count: int = 3) -> None:
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, 2) for _ in range(count)
    )


def rows() -> list[UsageEvent]:
    return list(UsageEvent.objects.order_by("pk"))


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("meter_api", ["v1", "v2"])
def test_a_revoked_key_leaves_rows_waiting_and_they_go_through_once_it_works(
    fake_stripe: FakeStripe,
    configure: Configure,
    api_calls: Metric,
    customer: str,
    caplog: pytest.LogCaptureFixture,
    meter_api: str,
) -> None:
    configure(METER_API=meter_api, MAX_ATTEMPTS=2)
    record(customer)
    fake_stripe.keys.revoke(FAKE_STRIPE_API_KEY)

    for _ in range(3):  # more batches than MAX_ATTEMPTS allows attempts
        stats = deliver_pending()
        assert (stats.delivered, stats.failed) == (0, 0)
        make_due()

    for row in rows():
        assert (row.status, row.attempts, row.last_error_code) == (
            PENDING,
            0,
            "credentials_rejected",
        )
        assert "Invalid API Key provided: sk_test_****fake" in row.last_error_message
        assert "STRIPE_API_KEY" in row.last_error_message
        assert FAKE_STRIPE_API_KEY not in row.last_error_message
    said = errors(caplog)
    assert len(said) == 3  # every batch, not once
    assert all("3 usage event(s)" in line and meter_api in line for line in said)
    assert all("nothing will be delivered until" in line for line in said)
    assert all(FAKE_STRIPE_API_KEY not in line for line in said)

    fake_stripe.keys.restore(FAKE_STRIPE_API_KEY)
    assert deliver_pending().delivered == 3
    assert fake_stripe.meter_event_total("api_calls", customer) == 6
    assert {row.status for row in rows()} == {UsageEvent.Status.SENT}


def test_a_restricted_key_without_the_permission_waits_with_what_to_do(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    configure(METER_API="v1")
    record(customer, 1)
    fake_stripe.keys.deny(FAKE_STRIPE_API_KEY, "/v1/billing/meter_events")

    deliver_pending()

    [row] = rows()
    assert (row.status, row.attempts, row.last_error_code) == (PENDING, 0, "permission_denied")
    assert "rak_billing_meter_event_write" in row.last_error_message
    assert "restricted key" in row.last_error_message
    fake_stripe.keys.allow(FAKE_STRIPE_API_KEY)
    make_due()
    assert deliver_pending().delivered == 1


def test_rows_waiting_on_the_key_are_due_the_moment_a_request_goes_through(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    configure(METER_API="v1", RETRY_BASE_DELAY=600.0, RETRY_MAX_DELAY=3600.0)
    backend = billflow_usage.backends.get_backend()
    record(customer, 2)
    fake_stripe.keys.revoke(FAKE_STRIPE_API_KEY)
    deliver_pending(backend=backend)
    fake_stripe.keys.restore(FAKE_STRIPE_API_KEY)

    billflow_usage.record_usage("api_calls", customer, 1)
    deliver_pending(backend=backend)  # the new row goes through: the key works again...
    deliver_pending(backend=backend)  # ...so the two that waited are due at once

    assert fake_stripe.meter_event_total("api_calls", customer) == 5
    backend.close()


def test_a_session_stripe_forgot_is_renewed_at_once(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    configure(METER_API="v2")
    backend = StripeBackend()
    record(customer, 1)
    deliver_pending(backend=backend)
    fake_stripe.forget_sessions()  # a restarted Stripe, long before the session's expiry

    record(customer, 2)
    stats = deliver_pending(backend=backend)

    assert (stats.delivered, stats.retried, stats.failed) == (2, 0, 0)
    assert fake_stripe.request_count(SESSION) == 2
    assert fake_stripe.meter_event_total("api_calls", customer) == 6
    backend.close()


def test_the_worker_prints_that_the_key_is_rejected(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    configure(METER_API="v1")
    record(customer, 2)
    fake_stripe.keys.revoke(FAKE_STRIPE_API_KEY)
    out = StringIO()

    call_command("billflow_worker", "--once", stdout=out)

    printed = out.getvalue()
    assert "2 waiting on rejected credentials" in printed
    assert "Stripe rejected the API key" in printed
    assert FAKE_STRIPE_API_KEY not in printed


def test_a_seat_push_refused_for_the_key_waits_with_the_same_code(
    fake_stripe: FakeStripe, configure: Configure, customer: str
) -> None:
    price = fake_stripe.create_price()
    subscription = fake_stripe.create_subscription(customer, price["id"], quantity=1)
    link = SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=LicensedMetricFactory(key="seats"),
        stripe_subscription_id=subscription["id"],
        stripe_subscription_item_id=subscription["items"]["data"][0]["id"],
    )
    billflow_usage.set_quantity(link.metric, customer, 4)
    fake_stripe.keys.revoke(FAKE_STRIPE_API_KEY)

    deliver_pending()

    link.refresh_from_db()
    assert not link.quantity_in_sync
    assert link.last_error_code == "credentials_rejected"
    assert "STRIPE_API_KEY" in link.last_error_message


def test_while_the_key_is_refused_a_batch_tries_one_request_not_one_per_event(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    configure(METER_API="v1")
    record(customer, 5)
    fake_stripe.keys.revoke(FAKE_STRIPE_API_KEY)
    deliver_pending()
    assert fake_stripe.request_count("/v1/billing/meter_events") == 5

    make_due()
    assert deliver_pending().refused == 5

    assert fake_stripe.request_count("/v1/billing/meter_events") == 6
    fake_stripe.keys.restore(FAKE_STRIPE_API_KEY)
    make_due()
    assert deliver_pending().delivered == 5  # the probe goes through, then the rest
    assert fake_stripe.meter_event_total("api_calls", customer) == 10
