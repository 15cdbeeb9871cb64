"""The ledger's Cancel action: what may be cancelled, and how.

- Pending rows never handed to Stripe (no attempt, no claim, expired or not) are cancelled in
  the ledger: they never reach Stripe. One an earlier attempt or a dead worker may have sent
  is left to be sent (Stripe counts it once), then cancelled like a sent row.
- Sent rows Stripe received less than 24 hours ago are cancelled in Stripe (the shared
  :func:`~billflow_usage.reconcile.cancellation.cancel_in_stripe`), and marked cancelled only
  once Stripe confirms.
- Rows aggregated into one Stripe event (a delivery group) go together or not at all.
- Anything else is left alone, with a message saying why and what to do instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import router, transaction
from django.db.models import Q

from billflow_usage.backends.base import BaseBackend, Outcome
from billflow_usage.models import UsageEvent
from billflow_usage.reconcile.cancellation import cancel_in_stripe, cancellable_since
from billflow_usage.services.backend_access import describe_failure, request_backend
from billflow_usage.services.delivery_groups import refusals, select_groups

ADMIN_CANCEL_CODE = "cancelled_by_admin"
#: Pending rows that certainly never reached Stripe: never attempted, never claimed.
NEVER_HANDED_TO_STRIPE = Q(attempts=0, claimed_until__isnull=True)


@dataclass
class CancelOutcome:
    #: (row, what happened to it), for the admin's LogEntry.
    cancelled: list[tuple[UsageEvent, str]] = field(default_factory=list)
    #: Why the other rows were left alone, one message per reason.
    refused: list[str] = field(default_factory=list)


def cancel_events(events: Sequence[UsageEvent], *, now: datetime) -> CancelOutcome:
    """Cancel what may be cancelled among ``events`` (with ``metric`` and ``group`` loaded)."""
    outcome = CancelOutcome()
    group_ids = {event.group_id for event in events if event.group_id is not None}
    selected = UsageEvent.objects.filter(pk__in=[event.pk for event in events])
    partial = select_groups(selected, group_ids).partial
    outcome.refused += refusals(partial, verb="cancelled")
    whole = [event for event in events if event.group_id not in partial]
    units = [[event] for event in whole if event.group_id is None]
    grouped: defaultdict[int, list[UsageEvent]] = defaultdict(list)
    for event in whole:
        if event.group_id is not None:
            grouped[event.group_id].append(event)
    units += list(grouped.values())
    pending = [unit for unit in units if unit[0].status == UsageEvent.Status.PENDING]
    sent = [unit for unit in units if unit[0].status == UsageEvent.Status.SENT]
    _cancel_pending(pending, outcome, now=now)
    _cancel_sent(sent, outcome, now=now)
    other = sum(len(unit) for unit in units if unit not in pending and unit not in sent)
    if other:
        outcome.refused.append(f"{other} event(s) were failed or already cancelled.")
    return outcome


def _cancel_pending(
    units: list[list[UsageEvent]], outcome: CancelOutcome, *, now: datetime
) -> None:
    """Cancel in the ledger, each unit wholly or not at all: only rows never handed to
    Stripe. Not while a worker holds a row (it is being sent right now), nor when an earlier
    attempt or a worker that died may have sent it (cancelled here, Stripe would bill it
    while the ledger says cancelled)."""
    busy = maybe_sent = 0
    for unit in units:
        with transaction.atomic(using=router.db_for_write(UsageEvent)):
            changed = UsageEvent.objects.filter(
                NEVER_HANDED_TO_STRIPE,
                pk__in=[e.pk for e in unit],
                status=UsageEvent.Status.PENDING,
            ).cancel(next_attempt_at=now)
            if changed != len(unit):
                transaction.set_rollback(True)
        if changed != len(unit):
            if UsageEvent.objects.filter(pk__in=[e.pk for e in unit], claimed_until__gt=now):
                busy += len(unit)
            else:
                maybe_sent += len(unit)
            continue
        outcome.cancelled += [(event, "Cancelled before it was sent.") for event in unit]
    if busy:
        outcome.refused.append(
            f"{busy} pending event(s) are being sent right now; try again in a minute (once "
            "sent, they can be cancelled in Stripe within 24 hours)."
        )
    if maybe_sent:
        outcome.refused.append(
            f"{maybe_sent} pending event(s) may have reached Stripe already (an answer was "
            "lost, or the worker sending them stopped): they are sent again, which Stripe "
            "counts once; cancel them once they show as sent, within Stripe's 24 hours."
        )


def _cancel_sent(units: list[list[UsageEvent]], outcome: CancelOutcome, *, now: datetime) -> None:
    recent = cancellable_since(now)
    too_old = [u for u in units if not _received_since(u, recent)]
    if too_old:
        outcome.refused.append(
            f"{sum(len(u) for u in too_old)} event(s) were sent to Stripe more than 24 hours "
            "ago, so Stripe can no longer cancel them: issue a credit note for the invoice "
            "(or record a negative correction while the period is open)."
        )
    open_units = [u for u in units if u not in too_old]
    if not open_units:
        return
    try:
        with request_backend() as backend:
            _cancel_in_stripe(open_units, backend, outcome)
    except Exception as exc:  # the backend could not be built
        outcome.refused.append(
            f"{sum(len(u) for u in open_units)} sent event(s) not cancelled: "
            f"{describe_failure(exc).message}"
        )


def _cancel_in_stripe(
    units: list[list[UsageEvent]], backend: BaseBackend, outcome: CancelOutcome
) -> None:
    for position, unit in enumerate(units):
        first = unit[0]
        identifier = first.group.identifier if first.group is not None else first.identifier
        assert first.metric is not None  # a sent row has one (bfu_event_metric_unless_failed)
        try:
            result = cancel_in_stripe(
                first.metric,
                identifier,
                unit,
                backend,
                code=ADMIN_CANCEL_CODE,
                message="Cancelled in Stripe from the admin, within Stripe's 24 h window.",
            )
        except Exception as exc:  # a backend that raises instead of answering a Result
            result = backend.result_for_error(identifier, exc)
        if result.outcome == Outcome.DELIVERED:
            outcome.cancelled += [(event, f"Cancelled in Stripe ({identifier}).") for event in unit]
        elif result.rejects_credentials:
            left = sum(len(u) for u in units[position:])
            outcome.refused.append(
                f"{result.message} {left} sent event(s) were not cancelled: try again once "
                "the key works (within Stripe's 24 hours)."
            )
            return
        elif result.outcome == Outcome.RETRY:
            left = sum(len(u) for u in units[position:])
            outcome.refused.append(
                f"Stripe could not be reached ({result.code}: {result.message}); {left} sent "
                "event(s) were not cancelled: try again shortly."
            )
            return
        else:
            outcome.refused.append(
                f"Stripe did not cancel {identifier} ({result.code}): {result.message}"
            )


def _received_since(unit: list[UsageEvent], moment: datetime) -> bool:
    """Whether Stripe received the unit's event (a group's, for aggregated rows) since then."""
    group = unit[0].group
    received = (group.sent_at if group is not None else None) or unit[0].sent_at
    return received is not None and received >= moment
