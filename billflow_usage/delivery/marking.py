"""Writing results back to the ledger, only on rows the claim still holds.

Everything for one batch is written in one transaction; the ``usage_delivered`` and
``delivery_failed`` signals go out after it committed (outside any transaction the caller
opened, they run once the caller's block ends).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billflow_usage.backends.base import BaseBackend, Outcome, Result
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery.retry import backoff
from billflow_usage.models import DeliveryGroup, UsageEvent
from billflow_usage.signals import delivery_failed, usage_delivered

logger = logging.getLogger("billflow_usage")

#: What marking writes besides ``attempts`` (always +1) and the cleared claim.
WRITTEN = ("status", "next_attempt_at", "last_error_code", "last_error_message", "sent_at")


@dataclass
class Marked:
    """Rows as written, by outcome, for the stats and the signals."""

    delivered: list[UsageEvent] = field(default_factory=list)
    retried: list[UsageEvent] = field(default_factory=list)
    failed: list[UsageEvent] = field(default_factory=list)


def mark(
    outcomes: Sequence[tuple[Sequence[UsageEvent], Result]],
    *,
    token: uuid.UUID,
    using: str,
    backend: BaseBackend,
) -> Marked:
    """Apply each result to its events (one Stripe event may stand for a group of rows)."""
    marked = Marked()
    if not outcomes:
        return marked
    now = timezone.now()
    ids = [event.pk for events, _ in outcomes for event in events]
    with transaction.atomic(using=using):
        owned = UsageEvent.objects.using(using).select_for_update().filter(claim_token=token)
        rows = owned.in_bulk(ids)
        changed: list[UsageEvent] = []
        groups: dict[int, str] = {}
        delays: dict[tuple[int, float | None], timedelta] = {}
        for events, result in outcomes:
            for event in events:
                row = rows.get(event.pk)
                if row is None:
                    continue  # the lease ran out and another claim took the row over
                row.metric, row.group = event.metric, event.group
                _apply(row, result, now, marked, delays)
                changed.append(row)
                if row.group_id is not None:
                    groups[row.group_id] = _group_status(row)
        _write(changed, using)
        _mark_groups(groups, now, using)
    _send_signals(marked, backend)
    return marked


def _apply(
    row: UsageEvent,
    result: Result,
    now: datetime,
    marked: Marked,
    delays: dict[tuple[int, float | None], timedelta],
) -> None:
    row.attempts += 1
    row.claimed_until = None
    row.claim_token = None
    if result.outcome == Outcome.DELIVERED:
        row.status = UsageEvent.Status.SENT
        row.sent_at = now
        row.last_error_code = row.last_error_message = ""
        marked.delivered.append(row)
        return
    row.last_error_code = result.code[:100]
    row.last_error_message = result.message
    if result.outcome == Outcome.RETRY and row.attempts < billflow_settings.MAX_ATTEMPTS:
        # One jittered delay per attempt count in a batch: rows that failed together retry
        # together (one claim, one request in v2), while other workers' rows spread out.
        key = (row.attempts, result.retry_after)
        if key not in delays:
            delays[key] = backoff(
                row.attempts,
                base=billflow_settings.RETRY_BASE_DELAY,
                cap=billflow_settings.RETRY_MAX_DELAY,
                retry_after=result.retry_after,
            )
        row.next_attempt_at = now + delays[key]
        marked.retried.append(row)
        return
    if result.outcome == Outcome.RETRY:
        row.last_error_message = (
            f"Gave up after {row.attempts} attempts (MAX_ATTEMPTS); the last error was: "
            f"{result.message}"
        )
    row.status = UsageEvent.Status.FAILED
    marked.failed.append(row)


def _write(rows: list[UsageEvent], using: str) -> None:
    """One UPDATE per distinct set of values (rows are locked by this transaction); much
    cheaper than ``bulk_update``'s per-row CASE expressions."""
    alike: defaultdict[tuple[object, ...], list[int]] = defaultdict(list)
    for row in rows:
        alike[tuple(getattr(row, name) for name in WRITTEN)].append(row.pk)
    for values, ids in alike.items():
        UsageEvent.objects.using(using).filter(pk__in=ids).update(
            **dict(zip(WRITTEN, values, strict=True)),
            attempts=F("attempts") + 1,
            claimed_until=None,
            claim_token=None,
        )


def _group_status(row: UsageEvent) -> str:
    if row.status == UsageEvent.Status.SENT:
        return DeliveryGroup.Status.SENT
    if row.status == UsageEvent.Status.FAILED:
        return DeliveryGroup.Status.FAILED
    return DeliveryGroup.Status.PENDING


def _mark_groups(groups: dict[int, str], now: datetime, using: str) -> None:
    by_status: defaultdict[str, list[int]] = defaultdict(list)
    for group_id, status in groups.items():
        by_status[status].append(group_id)
    for status, group_ids in by_status.items():
        sent_at = now if status == DeliveryGroup.Status.SENT else None
        DeliveryGroup.objects.using(using).filter(pk__in=group_ids).exclude(
            status=DeliveryGroup.Status.SENT
        ).update(status=status, sent_at=sent_at)


def _send_signals(marked: Marked, backend: BaseBackend) -> None:
    sender = type(backend)
    if marked.delivered:
        usage_delivered.send(sender=sender, events=marked.delivered)
    failures: defaultdict[tuple[str, str], list[UsageEvent]] = defaultdict(list)
    for row in marked.failed:
        failures[(row.last_error_code, row.last_error_message)].append(row)
    for (code, message), events in failures.items():
        logger.warning("%d usage event(s) failed permanently (%s): %s", len(events), code, message)
        delivery_failed.send(sender=sender, events=events, code=code, message=message)
