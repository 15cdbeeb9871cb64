"""Claiming due usage events so that any number of workers deliver each exactly once.

A claim stamps rows with a lease (``claimed_until``) and a random ``claim_token`` and commits
before anything is sent. Results are only written where the token still matches, so a worker
whose lease ran out (it hung or died) can't overwrite the work of the one that redid it, and
the redo carries the same identifiers, which Stripe deduplicates.

A claim is a few statements whatever its size: candidates are read (only the columns delivery
needs) ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, in the order of the due-events index, and
stamped by one UPDATE. On SQLite (one writer at a time) the conditional UPDATE alone keeps
claims exclusive.

When the backend allows only one call at a time per customer and meter (Stripe's v1 meter
events), and with aggregation, a claim never takes a (customer, metric) pair another claim
holds: claims are then serialised by a transaction-level advisory lock, held only for the
claiming statements, which makes that rule race-free.

With aggregation a claim takes whole backlogs (all due events of the (customer, metric) pairs
of the oldest due events, as many whole pairs as fit in the batch) and groups them by window
in the same transaction (see :mod:`~billflow_usage.delivery.aggregation`), so each window of
a customer's usage goes to Stripe as one event.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.db import connections, transaction
from django.db.models import BigIntegerField, Case, F, Q, QuerySet, Value, When

from billflow_usage.delivery.aggregation import Formed, form_groups
from billflow_usage.delivery.arrays import one_of
from billflow_usage.delivery.claimed import CLAIMED_FIELDS, Claim, ClaimedEvent
from billflow_usage.models import DeliveryGroup, Metric, UsageEvent

#: Any constant works; it names "billflow_usage claims" among the host's advisory locks.
CLAIM_LOCK_ID = 0x62666C77

Pair = tuple[int, str]  # (metric_id, customer_id)
Rows = TypeVar("Rows", bound="QuerySet[Any]")


def serialise_claims(using: str) -> None:
    """Take the claim lock until the end of the current transaction (PostgreSQL only)."""
    connection = connections[using]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK_ID])


def lock_skipping(queryset: Rows, using: str) -> Rows:
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
    exclusive: bool = True,
    aggregation_window: float = 0,
    event_ids: Collection[int] | None = None,
) -> Claim:
    """Claim up to ``batch_size`` due events and commit the claim; return them.

    ``exclusive``: leave out (customer, metric) pairs another claim holds (always so with
    aggregation).
    """
    token = uuid.uuid4()
    with transaction.atomic(using=using):
        candidates = UsageEvent.objects.using(using).filter(_claimable(now))
        if exclusive or aggregation_window > 0:
            serialise_claims(using)
            busy = _busy(now, using)
            if busy:
                candidates = candidates.exclude(busy)
        if event_ids is not None:
            candidates = candidates.filter(pk__in=list(event_ids))
        if aggregation_window > 0:
            candidates = candidates.exclude(_window_open(now, aggregation_window, using))
            selected = _whole_backlogs(candidates, batch_size, using)
        else:
            oldest = lock_skipping(candidates, using).order_by("next_attempt_at")
            selected = _read(oldest[:batch_size])
        if not selected:
            return Claim(token)
        metrics = Metric.objects.using(using).in_bulk({e.metric_id for e in selected})
        formed = (
            form_groups(selected, metrics, window=aggregation_window, using=using)
            if aggregation_window > 0
            else []
        )
        until = now + timedelta(seconds=lease)
        if not _stamp(selected, formed, token, now=now, until=until, using=using):
            # Another worker claimed some of them meanwhile (only possible without row
            # locks): claim nothing rather than half a group.
            transaction.set_rollback(True, using=using)
            return Claim(token)
    for group, members in formed:
        for event in members:
            event.group_id = group.pk
    earlier_groups = {e.group_id for e in selected if e.group_id is not None}
    return Claim(token, selected, metrics, _groups(earlier_groups, formed, using))


def release(*, using: str, token: uuid.UUID, events: Collection[ClaimedEvent]) -> int:
    """Give unsent events back (due at once) without counting an attempt, each with the
    ended lease of the claim before this one, if any (see
    :attr:`ClaimedEvent.claimed_until`)."""
    by_lease: defaultdict[datetime | None, list[int]] = defaultdict(list)
    for event in events:
        by_lease[event.claimed_until].append(event.pk)
    return sum(
        UsageEvent.objects.using(using)
        .filter(one_of("pk", ids, using), claim_token=token)
        .update(claimed_until=lease, claim_token=None)
        for lease, ids in by_lease.items()
    )


def _stamp(
    events: list[ClaimedEvent],
    formed: Formed,
    token: uuid.UUID,
    *,
    now: datetime,
    until: datetime,
    using: str,
) -> bool:
    """Write the lease, the token and new groups on the selected rows, in one UPDATE; whether
    every row was still claimable."""
    values: dict[str, object] = {"claimed_until": until, "claim_token": token}
    if formed:
        values["group_id"] = _group_of(formed, using)
    rows = UsageEvent.objects.using(using).filter(
        _claimable(now), one_of("pk", [e.pk for e in events], using)
    )
    return rows.update(**values) == len(events)


def _read(queryset: QuerySet[UsageEvent]) -> list[ClaimedEvent]:
    return [ClaimedEvent(*row) for row in queryset.values_list(*CLAIMED_FIELDS)]


def _whole_backlogs(
    candidates: QuerySet[UsageEvent], batch_size: int, using: str
) -> list[ClaimedEvent]:
    """Every candidate of the pairs the oldest candidates belong to, in (customer, metric,
    time) order, as many whole pairs as fit in ``batch_size`` (one pair's first
    ``batch_size`` events when even it does not fit)."""
    oldest = candidates.order_by("next_attempt_at").values_list("metric_id", "customer_id")
    pairs: list[Pair] = list(dict.fromkeys(oldest[:batch_size]))
    if not pairs:
        return []
    ordered = lock_skipping(candidates.filter(_pairs(pairs, using)), using).order_by(
        "customer_id", "metric_id", "occurred_at"
    )
    events = _read(ordered[: batch_size + 1])
    if len(events) <= batch_size:
        return events
    cut = (events[batch_size].metric_id, events[batch_size].customer_id)
    whole = [e for e in events[:batch_size] if (e.metric_id, e.customer_id) != cut]
    return whole or events[:batch_size]


def _group_of(formed: Formed, using: str) -> Case:
    """Each member's new group; other rows keep theirs (a redo after a crash)."""
    members = (
        When(one_of("pk", [e.pk for e in events], using), then=Value(group.pk))
        for group, events in formed
    )
    return Case(*members, default=F("group_id"), output_field=BigIntegerField())


def _groups(ids: set[int], formed: Formed, using: str) -> dict[int, DeliveryGroup]:
    """The claimed events' groups: those formed now, and earlier ones (a redo after a crash)."""
    groups = {group.pk: group for group, _ in formed}
    earlier = ids - groups.keys()
    if earlier:
        groups.update(DeliveryGroup.objects.using(using).in_bulk(earlier))
    return groups


def _claimable(now: datetime) -> Q:
    return Q(status=UsageEvent.Status.PENDING, next_attempt_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    )


def _pairs(pairs: Iterable[Pair], using: str) -> Q:
    """Rows of any of these (metric, customer) pairs (no condition for no pairs)."""
    customers: defaultdict[int, set[str]] = defaultdict(set)
    for metric_id, customer_id in pairs:
        customers[metric_id].add(customer_id)
    matches = Q()
    for metric_id, ids in customers.items():
        matches |= Q(metric_id=metric_id) & one_of("customer_id", ids, using)
    return matches


def _busy(now: datetime, using: str) -> Q:
    """(customer, metric) pairs another claim in force holds: read once per claim (the claim
    lock makes it current), which is far cheaper than a correlated subquery per row."""
    held = (
        UsageEvent.objects.using(using)
        .filter(status=UsageEvent.Status.PENDING, claimed_until__gt=now)
        .values_list("metric_id", "customer_id")
        .distinct()
    )
    return _pairs(held, using)


def _window_open(now: datetime, window: float, using: str) -> Q:
    """Ungrouped events of sum metrics whose aggregation window has not closed yet."""
    current_start = datetime.fromtimestamp(now.timestamp() // window * window, tz=now.tzinfo)
    sum_metrics = Metric.objects.using(using).filter(aggregation=Metric.Aggregation.SUM)
    return Q(
        group__isnull=True,
        metric_id__in=sum_metrics.values("pk"),
        occurred_at__gte=current_start,
    )
