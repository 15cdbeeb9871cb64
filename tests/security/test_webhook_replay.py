"""Replays of the meter error webhook: an old signed request, the same event twice, an event
that arrives after the rows it names were delivered again. None may turn delivered usage
into failed usage (an operator's Retry would then bill it twice once Stripe's 24 h of
identifier deduplication are over), and refused requests cost nothing."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.delivery.claim import claim_events
from billflow_usage.models import DeliveryGroup, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.security.webhook_scene import YEAR, Scene

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.reconcile.urls")]


@pytest.fixture
def scene(settings: Any, fake_stripe: FakeStripe) -> Scene:
    return Scene.build(settings, fake_stripe)


def test_a_signed_request_a_year_old_is_refused_before_any_work(
    scene: Scene, django_assert_num_queries: Any
) -> None:
    row = scene.refused_row()
    delivery = scene.report()
    year_old = delivery.signed(int(time.time()) - YEAR)

    with django_assert_num_queries(0):
        response = scene.post(delivery, year_old)

    assert response.status_code == 400
    assert "older than 300 seconds" in response.content.decode()
    assert scene.event_fetches() == 0
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.SENT


def test_the_tolerance_is_a_setting(scene: Scene) -> None:
    scene.configure(METER_WEBHOOK_TOLERANCE=60)
    row = scene.refused_row()
    delivery = scene.report()
    now = int(time.time())

    assert scene.post(delivery, delivery.signed(now - 65)).status_code == 400
    assert scene.post(delivery, delivery.signed(now - 50)).json() == {"marked": 1}
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.FAILED


def test_a_replayed_event_marks_nothing_and_costs_one_select(
    scene: Scene, django_assert_num_queries: Any
) -> None:
    """The event marks the row; the operator fixes the customer and retries (Stripe takes
    it); the same signed request, replayed within its 5 minutes, must not fail it again."""
    row = scene.refused_row()
    delivery = scene.report()
    assert scene.post(delivery).json() == {"marked": 1}
    scene.resend_after_fix(row)
    fetches = scene.event_fetches()

    with django_assert_num_queries(1):
        replay = scene.post(delivery)

    assert (replay.status_code, replay.json()) == (200, {"marked": 0, "already_processed": True})
    assert scene.event_fetches() == fetches
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.SENT


def test_rows_delivered_after_the_event_was_created_stay_sent(scene: Scene) -> None:
    """Stripe retries a delivery for up to 3 days: the event can arrive after a row it names
    was sent again and taken (here: its first answer was lost, its retry went through)."""
    still_refused = scene.refused_row("cus_unknown2")
    (row,) = scene.unanswered_rows("cus_retried1")
    delivery = scene.report()
    scene.resend_when_due(row)

    response = scene.post(delivery, delivery.signed(int(time.time())))

    assert response.json() == {"marked": 1}
    row.refresh_from_db()
    still_refused.refresh_from_db()
    assert (row.status, row.last_error_code) == (UsageEvent.Status.SENT, "")
    assert (still_refused.status, still_refused.last_error_code) == (
        UsageEvent.Status.FAILED,
        "meter_event_customer_not_found",
    )


def due(row: UsageEvent, seconds: float = 0) -> None:
    """Schedule the row's next attempt ``seconds`` from now."""
    UsageEvent.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() + timedelta(seconds=seconds)
    )


def test_a_pending_row_is_failed_only_if_not_retried_since_the_event(scene: Scene) -> None:
    """A row whose answer was lost is pending. If its retry was due before the event was
    created and nothing has claimed it, Stripe's refusal is the last word: failed. If its
    retry came due after, that retry may have been taken: it decides."""
    waited, retried_later = scene.unanswered_rows("cus_waited1", "cus_retried2")
    due(waited, -1)  # Stripe's `created` has milliseconds: clearly before it
    due(retried_later, 60)
    delivery = scene.report()

    assert scene.post(delivery).json() == {"marked": 1}

    waited.refresh_from_db()
    retried_later.refresh_from_db()
    assert (waited.status, waited.last_error_code) == (
        UsageEvent.Status.FAILED,
        "meter_event_customer_not_found",
    )
    assert retried_later.status == UsageEvent.Status.PENDING


def test_a_row_a_worker_is_sending_is_left_to_it(scene: Scene) -> None:
    """Failing a claimed row would clear its claim: the worker's answer (delivered, say)
    would then be dropped and the row left failed although Stripe has it."""
    (row,) = scene.unanswered_rows("cus_inflight1")
    due(row)
    delivery = scene.report()
    held = claim_events(using="default", now=timezone.now(), batch_size=10, lease=300)
    assert [event.pk for event in held.events] == [row.pk]

    assert scene.post(delivery).json() == {"marked": 0}

    row.refresh_from_db()
    assert (row.status, row.claim_token) == (UsageEvent.Status.PENDING, held.token)


def test_aggregated_rows_go_with_their_group(scene: Scene) -> None:
    """Stripe names a delivery group by its identifier: all its rows fail with it, and a
    group sent again after the event stays sent whole."""
    scene.configure(AGGREGATION_WINDOW=3600)
    hour_ago = timezone.now() - timedelta(hours=1)

    def record(customer: str) -> list[UsageEvent]:
        return [
            billflow_usage.record_usage("api_calls", customer, v, timestamp=hour_ago)
            for v in (1, 2)
        ]

    refused = record("cus_grouped1")
    deliver_pending()
    scene.fake.faults.add("drop_after_processing", route="/v2/billing/meter_event_stream")
    resent = record("cus_grouped2")
    deliver_pending()
    scene.fake.faults.clear()
    delivery = scene.report()
    scene.resend_when_due(resent[0])

    assert scene.post(delivery).json() == {"marked": 2}

    rows = UsageEvent.objects.select_related("group").in_bulk([r.pk for r in refused + resent])
    assert {(rows[r.pk].status, rows[r.pk].group.status) for r in refused} == {
        (UsageEvent.Status.FAILED, DeliveryGroup.Status.FAILED)
    }
    assert {(rows[r.pk].status, rows[r.pk].group.status) for r in resent} == {
        (UsageEvent.Status.SENT, DeliveryGroup.Status.SENT)
    }
