"""Writing results back to the ledger, only on rows the claim still holds.

Everything for one batch is written in one transaction, with one UPDATE per distinct set of
values (a batch that went well is one UPDATE), without reading the rows first. The
``usage_delivered`` and ``delivery_failed`` signals go out after it committed (outside any
transaction the caller opened, they run once the caller's block ends), with the rows as
marked, read back only when a receiver is connected.

Every result counts an attempt except credentials the sink refused
(:attr:`~billflow_usage.backends.base.Result.rejects_credentials`): that is the account's
problem, not the row's, so such rows wait (backing off with the number of batches refused in
a row, at most :data:`CREDENTIALS_MAX_DELAY`) and never give up.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import transaction
from django.db.models import F, QuerySet
from django.dispatch import Signal
from django.utils import timezone

from billflow_usage.backends.base import BaseBackend, Outcome, Result
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery.arrays import one_of
from billflow_usage.delivery.claimed import ClaimedEvent, Outcomes
from billflow_usage.delivery.retry import backoff
from billflow_usage.models import DeliveryGroup, UsageEvent
from billflow_usage.signals import delivery_failed, usage_delivered

logger = logging.getLogger("billflow_usage")

#: Rows waiting on refused credentials are tried again at least this often (seconds), so a
#: fixed key is noticed within minutes even when nothing new is recorded.
CREDENTIALS_MAX_DELAY = 300.0


class Written(NamedTuple):
    """What marking writes on a row besides ``attempts`` and the claim token."""

    status: str
    #: Only a retry moves it.
    next_attempt_at: datetime | None
    last_error_code: str
    last_error_message: str
    sent_at: datetime | None
    #: ``attempts`` +1, except for refused credentials.
    attempted: bool = True
    #: The claim cleared; without an attempt counted, an earlier claim's ended lease is
    #: written back (see :attr:`ClaimedEvent.claimed_until`).
    claimed_until: datetime | None = None

    def columns(self) -> dict[str, object]:
        """The UPDATE's values, ``attempts`` and the cleared claim included."""
        values: dict[str, object] = self._asdict()
        del values["attempted"]
        if self.next_attempt_at is None:
            del values["next_attempt_at"]
        values["attempts"] = F("attempts") + 1 if self.attempted else F("attempts")
        return values


Writes = dict[Written, list[int]]


@dataclass
class Marked:
    """Primary keys of the rows written, by outcome, for the stats."""

    delivered: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    #: Waiting on credentials the sink refused.
    refused: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, writes: Writes) -> Marked:
        marked = cls()
        for written, pks in writes.items():
            if written.status == UsageEvent.Status.SENT:
                marked.delivered.extend(pks)
            elif written.status == UsageEvent.Status.FAILED:
                marked.failed.extend(pks)
            elif not written.attempted:
                marked.refused.extend(pks)
            else:
                marked.retried.extend(pks)
        return marked


def mark(
    outcomes: Outcomes,
    *,
    token: uuid.UUID,
    using: str,
    backend: BaseBackend,
    refused_batches: int = 1,
) -> Marked:
    """Apply each result to its events (one Stripe event may stand for a group of rows).

    ``refused_batches``: how many batches in a row (this one included) had their credentials
    refused; rows waiting on credentials back off with it.

    Optimistic: every row is written where the claim's token still holds it. Only when some
    rows were not (their lease ran out and another claim took them over, or they were
    cancelled) is that rolled back and redone on the rows still held, locked first.
    """
    if not outcomes:
        return Marked()
    now = timezone.now()
    ids = {event.pk for events, _ in outcomes for event in events}
    wait = backoff(
        refused_batches,
        base=billflow_settings.RETRY_BASE_DELAY,
        cap=min(billflow_settings.RETRY_MAX_DELAY, CREDENTIALS_MAX_DELAY),
    )
    writes, groups = _writes(outcomes, ids, now, wait)
    with transaction.atomic(using=using):
        complete = _apply(writes, groups, token, now, using) == len(ids)
        if not complete:
            transaction.set_rollback(True, using=using)
    if not complete:
        with transaction.atomic(using=using):
            held = set(_held(ids, token, using).select_for_update().values_list("pk", flat=True))
            writes, groups = _writes(outcomes, held, now, wait)
            _apply(writes, groups, token, now, using)
    _send_signals(writes, type(backend), using)
    return Marked.of(writes)


def _held(ids: Collection[int], token: uuid.UUID, using: str) -> QuerySet[UsageEvent]:
    """Rows the claim still holds."""
    return UsageEvent.objects.using(using).filter(
        one_of("pk", ids, using), claim_token=token, status=UsageEvent.Status.PENDING
    )


def _apply(
    writes: Writes, groups: dict[int, str], token: uuid.UUID, now: datetime, using: str
) -> int:
    """One UPDATE per distinct set of values, on rows still held; how many were written."""
    written = 0
    for values, pks in writes.items():
        written += _held(pks, token, using).update(**values.columns(), claim_token=None)
    _mark_groups(groups, now, using)
    return written


def _writes(
    outcomes: Outcomes, held: set[int], now: datetime, wait: timedelta
) -> tuple[Writes, dict[int, str]]:
    """The rows to write for each distinct set of values, and the new status of each group;
    ``wait`` is the delay of rows waiting on refused credentials."""
    writes: defaultdict[Written, list[int]] = defaultdict(list)
    groups: dict[int, str] = {}
    delays: dict[tuple[int, float | None], timedelta] = {}
    for events, result in outcomes:
        for event in events:
            if event.pk in held:
                written = _written(event, result, now, delays, wait)
                writes[written].append(event.pk)
                if event.group_id is not None:
                    groups[event.group_id] = _group_status(written.status)
    return writes, groups


def _written(
    event: ClaimedEvent,
    result: Result,
    now: datetime,
    delays: dict[tuple[int, float | None], timedelta],
    wait: timedelta,
) -> Written:
    attempts = event.attempts + 1
    if result.outcome == Outcome.DELIVERED:
        return Written(UsageEvent.Status.SENT, None, "", "", now)
    code = result.code[:100]
    if result.rejects_credentials:
        pending = UsageEvent.Status.PENDING
        return Written(
            pending,
            now + wait,
            code,
            result.message,
            None,
            attempted=False,
            claimed_until=event.claimed_until,
        )
    if result.outcome == Outcome.RETRY and attempts < billflow_settings.MAX_ATTEMPTS:
        # One jittered delay per attempt count in a batch: rows that failed together retry
        # together (one claim, one request in v2), while other workers' rows spread out.
        key = (attempts, result.retry_after)
        if key not in delays:
            delays[key] = backoff(
                attempts,
                base=billflow_settings.RETRY_BASE_DELAY,
                cap=billflow_settings.RETRY_MAX_DELAY,
                retry_after=result.retry_after,
            )
        return Written(UsageEvent.Status.PENDING, now + delays[key], code, result.message, None)
    message = result.message
    if result.outcome == Outcome.RETRY:
        message = f"Gave up after {attempts} attempts (MAX_ATTEMPTS); the last error was: {message}"
    return Written(UsageEvent.Status.FAILED, None, code, message, None)


def _group_status(status: str) -> str:
    if status == UsageEvent.Status.SENT:
        return DeliveryGroup.Status.SENT
    if status == UsageEvent.Status.FAILED:
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


def _send_signals(writes: Writes, sender: type, using: str) -> None:
    delivered = [
        pk for w, pks in writes.items() if w.status == UsageEvent.Status.SENT for pk in pks
    ]
    _send(usage_delivered, sender, delivered, using)
    failures: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
    for written, pks in writes.items():
        if written.status == UsageEvent.Status.FAILED:
            failures[(written.last_error_code, written.last_error_message)].extend(pks)
    for (code, message), pks in failures.items():
        logger.warning("%d usage event(s) failed permanently (%s): %s", len(pks), code, message)
        _send(delivery_failed, sender, pks, using, code=code, message=message)


def _send(signal: Signal, sender: type, pks: list[int], using: str, **kwargs: str) -> None:
    """Send ``signal`` with the rows as marked, when anyone listens."""
    if pks and signal.has_listeners(sender):
        events = UsageEvent.objects.using(using).filter(one_of("pk", pks, using))
        rows = list(events.select_related("metric", "group").order_by("pk"))
        signal.send(sender=sender, events=rows, **kwargs)
