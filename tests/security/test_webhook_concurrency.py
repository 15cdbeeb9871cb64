"""Two deliveries of one event at once (Stripe may deliver an event more than once): the
unique event ID decides, and the rows are marked once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.utils import timezone

from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.models import ProcessedMeterErrorEvent, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.security.webhook_scene import Scene

pytestmark = pytest.mark.urls("tests.reconcile.urls")

BACKENDS = "tests.security.test_webhook_concurrency"


class RacingBackend(StripeBackend):
    """Stripe, but each delivery waits after its fetch for the other one's: both have looked
    the event up (not yet applied) before either records it."""

    barrier = threading.Barrier(2, timeout=10)

    def fetch_event(self, event_id: str) -> dict[str, Any]:
        event = super().fetch_event(event_id)
        self.barrier.wait()
        return event


class OvertakenBackend(StripeBackend):
    """Stripe, but another delivery of the event records it while this one fetches."""

    def fetch_event(self, event_id: str) -> dict[str, Any]:
        event = super().fetch_event(event_id)
        ProcessedMeterErrorEvent.objects.create(
            event_id=event_id, event_type=event["type"], created_at=timezone.now()
        )
        return event


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("on_postgresql")
def test_two_deliveries_at_once_mark_once(settings: Any, fake_stripe: FakeStripe) -> None:
    scene = Scene.build(settings, fake_stripe, BACKEND=f"{BACKENDS}.RacingBackend")
    row = scene.refused_row()
    delivery = scene.report()
    responses: list[HttpResponse] = []

    def deliver() -> None:
        try:
            responses.append(scene.post(delivery))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(str(r.json()) for r in responses) == [
        str({"marked": 0, "already_processed": True}),
        str({"marked": 1}),
    ]
    assert scene.event_fetches() == 2  # both got past the lookup
    assert ProcessedMeterErrorEvent.objects.filter(event_id=delivery.id).count() == 1
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.FAILED


@pytest.mark.django_db
def test_a_delivery_overtaken_by_another_marks_nothing(
    settings: Any, fake_stripe: FakeStripe
) -> None:
    """The same race on any database, forced: the other delivery records the event between
    this one's lookup and its own INSERT."""
    scene = Scene.build(settings, fake_stripe, BACKEND=f"{BACKENDS}.OvertakenBackend")
    row = scene.refused_row()
    delivery = scene.report()

    response = scene.post(delivery)

    assert response.json() == {"marked": 0, "already_processed": True}
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.SENT


@pytest.mark.django_db
def test_events_are_kept_30_days_and_pruned_a_batch_at_a_time(
    settings: Any, fake_stripe: FakeStripe
) -> None:
    scene = Scene.build(settings, fake_stripe)
    now = timezone.now()
    old = now - timedelta(days=30, minutes=1)
    ProcessedMeterErrorEvent.objects.bulk_create(
        ProcessedMeterErrorEvent(
            event_id=f"evt_old_{i}", event_type="x", created_at=old, received_at=old
        )
        for i in range(150)
    )
    recent = now - timedelta(days=29)
    ProcessedMeterErrorEvent.objects.create(
        event_id="evt_recent", event_type="x", created_at=recent, received_at=recent
    )
    scene.refused_row()

    assert scene.post(scene.report()).json() == {"marked": 1}

    kept = ProcessedMeterErrorEvent.objects.filter(received_at__lt=now - timedelta(days=30))
    assert kept.count() == 50
    assert ProcessedMeterErrorEvent.objects.filter(event_id="evt_recent").exists()
