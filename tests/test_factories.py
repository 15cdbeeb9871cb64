"""Each state trait of ``UsageEventFactory`` makes a row the database's constraints accept,
in that state, as delivery or the admin would have left it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from billflow_usage.models import UsageEvent
from tests.factories import UsageEventFactory

pytestmark = pytest.mark.django_db

Status = UsageEvent.Status


@pytest.mark.parametrize(
    ("trait", "status"),
    [
        ("pending", Status.PENDING),
        ("claimed", Status.PENDING),
        ("sent", Status.SENT),
        ("failed", Status.FAILED),
        ("cancelled", Status.CANCELLED),
        ("unknown_metric", Status.FAILED),
        ("tracker_error", Status.FAILED),
    ],
)
def test_each_trait_stores_its_state(trait: str, status: str) -> None:
    event = UsageEventFactory(**{trait: True})
    event.refresh_from_db()

    assert event.status == status
    assert (event.sent_at is not None) == (status == Status.SENT)
    assert bool(event.last_error_code) == (status == Status.FAILED)
    held = event.claimed_until is not None and event.claimed_until > timezone.now()
    assert held == (event.claim_token is not None) == (trait == "claimed")
