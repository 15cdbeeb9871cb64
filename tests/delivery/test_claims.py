"""Claims and leases: a crashed worker's events are redone under the same identifiers, a
late worker can't overwrite the redo, and a time limit gives unsent events back."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.backends.base import Outcome, Result
from billflow_usage.backends.locmem import LocMemBackend
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.delivery import deliver_pending
from billflow_usage.delivery.claim import claim_events
from billflow_usage.delivery.claimed import Claim
from billflow_usage.delivery.marking import mark
from billflow_usage.delivery.sending import plan, send
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure, expire_claims

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def v1(configure: Configure) -> None:
    configure(METER_API="v1", CLAIM_LEASE=300)


def claim_all() -> Claim:
    return claim_events(using="default", now=timezone.now(), batch_size=100, lease=300)


def test_a_claim_is_committed_with_a_lease_and_a_token(api_calls: Metric, customer: str) -> None:
    event = billflow_usage.record_usage("api_calls", customer, 1)

    claim = claim_all()

    assert [e.pk for e in claim.events] == [event.pk]
    stored = UsageEvent.objects.get()
    assert stored.claim_token == claim.token
    assert stored.claimed_until is not None
    assert stored.claimed_until > timezone.now()
    assert claim_all().events == []  # held: nobody else gets it
    assert deliver_pending().claimed == 0


def test_a_claim_in_force_holds_the_whole_customer_and_meter(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    other = str(fake_stripe.create_customer()["id"])
    billflow_usage.record_usage("api_calls", customer, 1)
    claim_all()
    billflow_usage.record_usage("api_calls", customer, 2)
    billflow_usage.record_usage("api_calls", other, 3)

    stats = deliver_pending()

    assert stats.delivered == 1  # only the other customer's event: one sender per pair
    assert fake_stripe.meter_event_total("api_calls", other) == 3
    assert fake_stripe.meter_event_total("api_calls", customer) == 0


def test_a_crash_between_send_and_mark_is_redone_under_the_same_identifier(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    billflow_usage.record_usage("api_calls", customer, 4, identifier="crash-1")
    claim = claim_events(using="default", now=timezone.now(), batch_size=10, lease=300)
    items, _ = plan(claim, using="default")
    backend = StripeBackend()
    send(items, backend, deadline=None)  # Stripe has it; the worker dies before marking
    assert fake_stripe.meter_event_total("api_calls", customer) == 4

    expire_claims()
    assert deliver_pending().delivered == 1

    assert fake_stripe.meter_event_total("api_calls", customer) == 4
    assert [e["identifier"] for e in fake_stripe.meter_events("api_calls", customer)] == ["crash-1"]
    # The late worker wakes up: its token no longer holds the row, so it changes nothing.
    failed = Result("crash-1", Outcome.FAILED, "late", "too late")
    late = mark([(claim.events, failed)], token=claim.token, using="default", backend=backend)
    assert late.failed == []
    event = UsageEvent.objects.get()
    assert (event.status, event.last_error_code) == (UsageEvent.Status.SENT, "")
    backend.close()


def test_a_time_limit_gives_unsent_events_back(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    billflow_usage.record_usage("api_calls", customer, 1)

    stats = deliver_pending(time_limit=0)

    assert (stats.claimed, stats.released, stats.delivered) == (1, 1, 0)
    event = UsageEvent.objects.get()
    assert (event.status, event.attempts, event.claim_token) == ("pending", 0, None)
    assert deliver_pending().delivered == 1


def test_max_batches_and_batch_size_bound_a_run(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    customers = [str(fake_stripe.create_customer()["id"]) for _ in range(5)]
    billflow_usage.record_usage_bulk(billflow_usage.Usage("api_calls", c, 1) for c in customers)

    stats = deliver_pending(batch_size=2, max_batches=2)

    assert (stats.batches, stats.delivered) == (2, 4)
    assert deliver_pending(batch_size=2).delivered == 1


def test_rows_taken_over_by_another_claim_are_left_to_it(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    other = str(fake_stripe.create_customer()["id"])
    billflow_usage.record_usage("api_calls", customer, 1)
    taken = billflow_usage.record_usage("api_calls", other, 2)
    claim = claim_all()
    # The lease on one row ran out and another worker claimed it.
    UsageEvent.objects.filter(pk=taken.pk).update(claim_token=uuid.uuid4())

    delivered = Result("any", Outcome.DELIVERED)
    marked = mark(
        [(claim.events, delivered)], token=claim.token, using="default", backend=LocMemBackend()
    )

    assert len(marked.delivered) == 1
    statuses = dict(UsageEvent.objects.values_list("customer_id", "status"))
    assert statuses == {customer: UsageEvent.Status.SENT, other: UsageEvent.Status.PENDING}
