"""A meter error report may name a refused v1 request by its idempotency key rather than the
event's identifier: the key the v1 sender makes (``bfu-me-<identifier>-<attempt>-<claim>``
since keys name the claim) is read back to the identifier by the Stripe backend that made
it, as the key before claims (``bfu-me-<identifier>-<attempt>``) still is."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

import billflow_usage
from billflow_usage.backends.base import BaseBackend, MeterEvent
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.backends.stripe.keys import meter_event_key
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import UsageEvent
from billflow_usage.webhooks import mark_meter_errors
from tests.reconcile.conftest import Account, ago
from tests.reconcile.test_webhooks import error_report

pytestmark = pytest.mark.django_db

SENT = MeterEvent("order-7-0", "api_calls", "cus_A", 1, datetime(2026, 6, 1, tzinfo=UTC), attempt=3)


@pytest.mark.parametrize("claim", [uuid.uuid4().hex, ""])
def test_a_report_naming_the_v1_request_key_marks_its_event(account: Account, claim: str) -> None:
    customer = account.customer()
    event = billflow_usage.record_usage("api_calls", customer, 2, timestamp=ago(hours=1))
    deliver_pending()
    key = meter_event_key(replace(SENT, identifier=event.identifier, claim=claim))

    assert mark_meter_errors(error_report(key)) == 1

    event.refresh_from_db()
    assert event.status == UsageEvent.Status.FAILED


@pytest.mark.parametrize(
    ("name", "identifier"),
    [
        (meter_event_key(replace(SENT, claim=uuid.uuid4().hex)), "order-7-0"),
        (meter_event_key(SENT), "order-7-0"),
        ("bfu-me-order-7-0", "order-7"),  # a key from before claims were named
        ("order-7-0", "order-7-0"),
        ("bfu-meh-" + "a" * 64 + "-0", "bfu-meh-" + "a" * 64 + "-0"),  # hashed: unreadable
    ],
)
def test_the_stripe_backend_reads_its_keys_back(name: str, identifier: str) -> None:
    assert StripeBackend.meter_event_identifier(name) == identifier


def test_other_backends_take_names_as_they_are() -> None:
    name = meter_event_key(SENT)
    assert BaseBackend.meter_event_identifier(name) == name
