"""Claiming due usage events so that any number of workers deliver each exactly once.

A claim stamps rows with a lease (``claimed_until``) and a random ``claim_token`` and commits
before anything is sent. Results are only written where the token still matches, so a worker
whose lease ran out (it hung or died) can't overwrite the work of the one that redid it, and
the redo carries the same identifiers, which Stripe deduplicates.

On PostgreSQL candidates are selected ``FOR UPDATE SKIP LOCKED`` and claims are serialised by
a transaction-level advisory lock, held only for the claiming statement: that makes the
"one customer and meter per worker" rule race-free (Stripe allows one concurrent meter event
call per customer per meter). On SQLite (one writer at a time) the conditional update alone
keeps claims exclusive.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections, transaction
from django.db.models import Q, QuerySet

from billflow_usage.models import Metric, UsageEvent

#: Any constant works; it names "billflow_usage claims" among the host's advisory locks.
CLAIM_LOCK_ID = 0x62666C77


@dataclass
class Claim:
    """The events one worker holds, and the token that proves it."""

    token: uuid.UUID
    events: list[UsageEvent] = field(default_factory=list)


def serialise_claims(using: str) -> None:
    """Take the claim lock until the end of the current transaction (PostgreSQL only)."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK_ID])


def lock_skipping(queryset: QuerySet, using: str) -> QuerySet:
    """``select_for_update(skip_locked=True)`` where the database supports it."""
    if connections[using].features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset


def claim_events(
    *,
    using: str,
    now: datetime,
    batch_size: int,
    lease: float,
    aggregation_window: float = 0,
    event_ids: Collection[int] | None = None,
) -> Claim:
    """Claim up to ``batch_size`` due events and commit the claim; return them."""
    claim = Claim(token=uuid.uuid4())
    rows = UsageEvent.objects.using(using)
    with transaction.atomic(using=using):
        serialise_claims(using)
        candidates = rows.filter(_claimable(now))
        busy = _busy(now, using)
        if busy:
            candidates = candidates.exclude(busy)
        if event_ids is not None:
            candidates = candidates.filter(pk__in=list(event_ids))
        if aggregation_window > 0:
            candidates = candidates.exclude(_window_open(now, aggregation_window, using))
        ids = list(
            lock_skipping(candidates, using)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if ids:
            rows.filter(_claimable(now), pk__in=ids).update(
                claimed_until=now + timedelta(seconds=lease), claim_token=claim.token
            )
    if ids:
        held = rows.filter(pk__in=ids, claim_token=claim.token)  # claim_token has no index
        claim.events = list(held.select_related("metric", "group").order_by("pk"))
    return claim


def release(*, using: str, token: uuid.UUID, ids: Collection[int]) -> int:
    """Give unsent events back (due at once) without counting an attempt."""
    return (
        UsageEvent.objects.using(using)
        .filter(pk__in=list(ids), claim_token=token)
        .update(claimed_until=None, claim_token=None)
    )


def _claimable(now: datetime) -> Q:
    return Q(status=UsageEvent.Status.PENDING, next_attempt_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    )


def _busy(now: datetime, using: str) -> Q:
    """(customer, metric) pairs another claim in force holds: read once per claim (the claim
    lock makes it current), which is far cheaper than a correlated subquery per row."""
    held = (
        UsageEvent.objects.using(using)
        .filter(status=UsageEvent.Status.PENDING, claimed_until__gt=now)
        .values_list("metric_id", "customer_id")
        .distinct()
    )
    customers: defaultdict[int, set[str]] = defaultdict(set)
    for metric_id, customer_id in held:
        customers[metric_id].add(customer_id)
    busy = Q()
    for metric_id, ids in customers.items():
        busy |= Q(metric_id=metric_id, customer_id__in=ids)
    return busy


def _window_open(now: datetime, window: float, using: str) -> Q:
    """Ungrouped events of sum metrics whose aggregation window has not closed yet."""
    current_start = datetime.fromtimestamp(now.timestamp() // window * window, tz=now.tzinfo)
    sum_metrics = Metric.objects.using(using).filter(aggregation=Metric.Aggregation.SUM)
    return Q(
        group__isnull=True,
        metric_id__in=sum_metrics.values("pk"),
        occurred_at__gte=current_start,
    )
