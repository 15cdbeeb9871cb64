"""The meter error webhook under attack: usage Stripe refuses asynchronously (v2 stream,
unknown customer), the fake Stripe's signed thin event about it, and the view at
``/stripe/meter-errors/`` (``tests.reconcile.urls``)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import UsageEvent
from billflow_usage.services.retrying import retry_failed
from billflow_usage.testing.fake_stripe import EventDelivery, FakeStripe
from tests.factories import MetricFactory

SECRET = "whsec_security_tests"
URL = "/stripe/meter-errors/"
EVENTS_ROUTE = "/v2/core/events/"
YEAR = 365 * 86_400


@dataclass
class Scene:
    fake: FakeStripe
    settings: Any

    @classmethod
    def build(cls, settings: Any, fake: FakeStripe, **overrides: Any) -> Scene:
        settings.BILLFLOW_USAGE = {
            **settings.BILLFLOW_USAGE,
            "DELIVERY": "worker",
            "METER_API": "v2",
            "METER_WEBHOOK_SECRET": SECRET,
            **overrides,
        }
        fake.create_meter("api_calls", formula="sum")
        MetricFactory(key="api_calls", event_name="api_calls")
        return cls(fake, settings)

    def configure(self, **overrides: Any) -> None:
        self.settings.BILLFLOW_USAGE = {**self.settings.BILLFLOW_USAGE, **overrides}

    def refused_row(self, customer: str = "cus_unknown1", value: int = 2) -> UsageEvent:
        """A row sent through the stream (so ``sent``) for a customer Stripe doesn't know: an
        error report names it."""
        row = billflow_usage.record_usage("api_calls", customer, value)
        deliver_pending()
        row.refresh_from_db()
        assert row.status == UsageEvent.Status.SENT
        return row

    def unanswered_rows(self, *customers: str) -> list[UsageEvent]:
        """Rows Stripe received (and will report) in one stream request whose answer was
        lost: still pending, to be resent after their backoff."""
        self.fake.faults.add(
            "drop_after_processing", route="/v2/billing/meter_event_stream", times=1
        )
        rows = [billflow_usage.record_usage("api_calls", customer, 2) for customer in customers]
        deliver_pending()
        for row in rows:
            row.refresh_from_db()
            assert (row.status, row.attempts) == (UsageEvent.Status.PENDING, 1)
        return rows

    def report(self) -> EventDelivery:
        """The one thin event about the errors filed since the last report."""
        (delivery,) = self.fake.emit_meter_error_events(SECRET)
        return delivery

    def post(
        self, delivery: EventDelivery | str, signature: str | None = None, **kwargs: Any
    ) -> HttpResponse:
        """POST a delivery (or any body) as Stripe would; exceptions become a 500."""
        body = delivery if isinstance(delivery, str) else delivery.body
        if signature is None and isinstance(delivery, EventDelivery):
            signature = delivery.signature
        headers = {} if signature is None else {"Stripe-Signature": signature}
        response: HttpResponse = Client(raise_request_exception=False).post(
            URL, body, content_type="application/json", headers=headers, **kwargs
        )
        return response

    def resend_after_fix(self, row: UsageEvent) -> None:
        """What an operator does: create the missing customer, Retry the failed row, deliver
        it (Stripe takes it now)."""
        self.fake.create_customer(id=row.customer_id)
        outcome = retry_failed(UsageEvent.objects.filter(pk=row.pk), now=timezone.now())
        assert [r.pk for r in outcome.retried] == [row.pk], outcome.refused
        deliver_pending()
        row.refresh_from_db()
        assert row.status == UsageEvent.Status.SENT

    def resend_when_due(self, row: UsageEvent) -> None:
        """The pending row's retry (its group's, if any), once its customer exists: Stripe
        takes it."""
        self.fake.create_customer(id=row.customer_id)
        together = UsageEvent.objects.filter(pk=row.pk)
        if row.group_id is not None:
            together = UsageEvent.objects.filter(group_id=row.group_id)
        together.update(next_attempt_at=timezone.now())
        deliver_pending()
        row.refresh_from_db()
        assert row.status == UsageEvent.Status.SENT

    def event_fetches(self) -> int:
        return self.fake.request_count(EVENTS_ROUTE)


def signed_body(payload: Any, secret: str = SECRET, at: float | None = None) -> tuple[str, str]:
    """A JSON body and a valid signature for it (Stripe's scheme)."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    delivery = EventDelivery("evt_x", "x", body, int(time.time() if at is None else at), (secret,))
    return body, delivery.signature
