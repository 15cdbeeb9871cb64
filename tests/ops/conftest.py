"""Health and metrics tests: rows placed in time with :func:`recorded`, the suite's frozen
clock (tests/clock.py) as "now"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from billflow_usage.models import SyncReport, UsageEvent
from tests.delivery.conftest import api_calls, configure, customer  # noqa: F401 (fixtures)


def recorded(event: UsageEvent, seconds_ago: float) -> UsageEvent:
    """Move a row's recording time back (``created_at`` is set on insert)."""
    created = timezone.now() - timedelta(seconds=seconds_ago)
    UsageEvent.objects.filter(pk=event.pk).update(created_at=created)
    event.created_at = created
    return event


def sync_report(**fields: Any) -> SyncReport:
    """A finished billflow_sync report holding ``report`` (the stored JSON document)."""
    values: dict[str, Any] = {
        "started_at": timezone.now() - timedelta(minutes=5),
        "finished_at": timezone.now() - timedelta(minutes=4),
        "mode": SyncReport.Mode.CHECK,
        "status": SyncReport.Status.COMPLETED,
        **fields,
    }
    return SyncReport.objects.create(**values)
