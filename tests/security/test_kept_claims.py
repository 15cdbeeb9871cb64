"""Kept: every write of a delivery result is guarded by its claim's token. A worker whose
claim was taken over (its lease ran out, another worker claimed the rows) changes nothing,
whatever it reports, for usage events and seat links alike."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.backends.base import Outcome, Result
from billflow_usage.backends.locmem import LocMemBackend
from billflow_usage.delivery.claim import claim_events, release
from billflow_usage.delivery.marking import mark
from billflow_usage.delivery.seats import claim_links, mark_link, release_links, reread
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from tests.factories import LicensedMetricFactory

pytestmark = pytest.mark.django_db

OUTCOMES = [
    Result("any", Outcome.DELIVERED),
    Result("any", Outcome.RETRY, "http_500", "late retry"),
    Result("any", Outcome.FAILED, "late_failure", "late failure"),
]


def rows(model: type[UsageEvent] | type[SubscriptionItemLink]) -> list[dict[str, Any]]:
    return list(model.objects.order_by("pk").values())


def take_over(model: type[UsageEvent] | type[SubscriptionItemLink]) -> None:
    """Another worker's claim now holds every row."""
    model.objects.update(claim_token=uuid.uuid4())


@pytest.mark.parametrize("result", OUTCOMES, ids=lambda r: r.outcome.value)
def test_a_stale_claim_marks_no_usage_event(metric: Metric, result: Result) -> None:
    billflow_usage.record_usage(metric, "cus_A1", 2)
    claim = claim_events(using="default", now=timezone.now(), batch_size=10, lease=300)
    take_over(UsageEvent)
    before = rows(UsageEvent)

    marked = mark(
        [(claim.events, result)], token=claim.token, using="default", backend=LocMemBackend()
    )
    released = release(using="default", token=claim.token, events=claim.events)

    assert (marked.delivered, marked.failed, released) == ([], [], 0)
    assert rows(UsageEvent) == before


@pytest.mark.parametrize("result", OUTCOMES, ids=lambda r: r.outcome.value)
def test_a_stale_claim_marks_no_seat_link(result: Result) -> None:
    seats = LicensedMetricFactory(key="seats")
    SubscriptionItemLink.objects.create(
        customer_id="cus_A1", metric=seats, stripe_subscription_item_id="si_A1"
    )
    billflow_usage.set_quantity(seats, "cus_A1", 4)
    claim = claim_links(using="default", now=timezone.now(), limit=10)
    [item] = claim.links
    take_over(SubscriptionItemLink)
    before = rows(SubscriptionItemLink)

    mark_link(item, result, using="default")

    assert reread(item, using="default") is None  # nor would it push
    assert release_links([item], using="default") == 0
    assert rows(SubscriptionItemLink) == before
