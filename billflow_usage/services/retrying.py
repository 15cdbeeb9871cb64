"""The ledger's Retry action: which failed rows may go back to pending, and how.

- A failed row goes back to pending, due at once. ``attempts`` is kept: the next request gets
  a new idempotency key, so Stripe can't replay the stored answer of an earlier attempt.
- Rows aggregated into one Stripe event (a delivery group) go together or not at all: part
  of a group would send the whole group's value.
- Rows that can't succeed are refused, saying what to do instead: tracker errors, including
  a tracker's missing metric (the usage was never recorded as billable; its message says how
  to record it again, and doing both would bill it twice) and rows older than Stripe's 35
  days.
- At most :data:`RETRY_LIMIT` rows at once, oldest first. A selection of any size ("select
  all" across pages) is counted and read in bounded queries, never loaded whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import router, transaction
from django.db.models import Q, QuerySet

from billflow_usage.models import DeliveryGroup, UsageEvent
from billflow_usage.models.usage_event import UsageEventQuerySet
from billflow_usage.services.delivery_groups import PartialGroup, refusals, select_groups
from billflow_usage.tracking.metered import TRACKER_FAILURES
from billflow_usage.validation import STRIPE_HISTORY, TOO_OLD_CODE

#: Rows retried at most by one run of the action.
RETRY_LIMIT = 1000


@dataclass
class RetryOutcome:
    #: The rows queued again, for the admin's LogEntry.
    retried: list[UsageEvent] = field(default_factory=list)
    #: Why the other rows were left alone, one message per reason.
    refused: list[str] = field(default_factory=list)


@dataclass
class _Chosen:
    """What one run retries: rows of no group, and whole groups."""

    rows: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    count: int = 0


def retry_failed(
    selection: UsageEventQuerySet, *, now: datetime, limit: int = RETRY_LIMIT
) -> RetryOutcome:
    """Queue again what may be retried among ``selection``, at most ``limit`` rows."""
    outcome = RetryOutcome()
    selection = selection.order_by()
    failed = selection.filter(status=UsageEvent.Status.FAILED)
    not_failed = selection.exclude(status=UsageEvent.Status.FAILED).count()
    unrecorded = Q(last_error_code__in=TRACKER_FAILURES) | Q(metric__isnull=True)
    tracker_errors = failed.filter(unrecorded).count()
    sendable = failed.exclude(unrecorded).with_billed_at()
    too_old = sendable.filter(_too_old(now)).count()
    retriable = sendable.exclude(_too_old(now))
    total = retriable.count()
    chosen, partial = _choose(retriable, limit)
    if chosen.count:
        outcome.retried = _requeue(chosen, now, outcome)
    left = total - len(outcome.retried) - sum(group.selected for group in partial.values())
    outcome.refused += refusals(partial, verb="retried")
    if tracker_errors:
        outcome.refused.append(
            f"{tracker_errors} event(s) failed in their tracker ({', '.join(TRACKER_FAILURES)}) "
            "and were left alone: they were never recorded as usage Stripe can bill, and some "
            "have no customer or metric. Fix the cause, then record each one with "
            "record_usage(), as its error message says; retrying it as well would bill it "
            "twice."
        )
    if too_old:
        outcome.refused.append(
            f"{too_old} event(s) are more than {STRIPE_HISTORY.days} days old and were left "
            f"alone: Stripe only accepts meter events from the past {STRIPE_HISTORY.days} days. "
            "Bill them with an invoice item or a credit note instead."
        )
    if left > 0:
        outcome.refused.append(
            f"{left} other failed event(s) were left for another run: at most {limit} are "
            "retried at once, oldest first. Run the action again."
        )
    if not_failed:
        outcome.refused.append(f"{not_failed} event(s) were not failed and were left alone.")
    return outcome


def _too_old(now: datetime) -> Q:
    """Rows (annotated with ``billed_at``) Stripe can no longer take: marked so, or billed
    at a time (a group's, for aggregated rows) past its 35 days."""
    return Q(last_error_code=TOO_OLD_CODE) | Q(billed_at__lt=now - STRIPE_HISTORY)


def _choose(retriable: QuerySet[UsageEvent], limit: int) -> tuple[_Chosen, dict[int, PartialGroup]]:
    """The oldest ``limit`` retriable rows, taking each group they touch whole (or, when
    only part of it is selected, not at all); and the partly selected groups."""
    oldest = list(retriable.order_by("pk").values_list("pk", "group_id")[:limit])
    groups = select_groups(retriable, {group for _, group in oldest if group is not None})
    chosen = _Chosen()
    for pk, group in oldest:
        if group in groups.partial or group in chosen.groups:
            continue
        size = 1 if group is None else groups.whole[group]
        if chosen.count and chosen.count + size > limit:
            break
        if group is None:
            chosen.rows.append(pk)
        else:
            chosen.groups.append(group)
        chosen.count += size
    return chosen, groups.partial


def _requeue(chosen: _Chosen, now: datetime, outcome: RetryOutcome) -> list[UsageEvent]:
    """Make the chosen rows due now, all or none (none when any changed meanwhile)."""
    using = router.db_for_write(UsageEvent)
    failed = UsageEvent.objects.using(using).filter(status=UsageEvent.Status.FAILED)
    rows = list(failed.filter(Q(pk__in=chosen.rows) | Q(group_id__in=chosen.groups)))
    with transaction.atomic(using=using):
        changed = failed.filter(pk__in=[row.pk for row in rows]).update(
            status=UsageEvent.Status.PENDING,
            next_attempt_at=now,
            claimed_until=None,
            claim_token=None,
        )
        if changed != len(rows) or len(rows) != chosen.count:
            transaction.set_rollback(True, using=using)
            outcome.refused.append(
                "Some selected events changed while they were being retried (another retry "
                "or a worker); none was retried: try again."
            )
            return []
        DeliveryGroup.objects.using(using).filter(pk__in=chosen.groups).exclude(
            status=DeliveryGroup.Status.SENT
        ).update(status=DeliveryGroup.Status.PENDING)
    return rows
