"""Optional aggregation: many claimed events of one customer and sum metric within one window
become a single Stripe event.

The group row, with an identifier derived from its members' identifiers, is committed before
anything is sent and the members point at it. A worker that crashes after that leaves the
members pending with their group; whoever claims them next sends the group again under the
same identifier, which Stripe deduplicates.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction

from billflow_usage.delivery.claim import Claim
from billflow_usage.models import DeliveryGroup, Metric, UsageEvent
from billflow_usage.models.limits import MAX_VALUE

GROUP_PREFIX = "bfug_"


class _LostClaim(Exception):
    """Some members were taken over by another claim meanwhile: don't group them."""


def group_identifier(members: Sequence[UsageEvent]) -> str:
    """Deterministic in the set of members, so the same events always make the same group."""
    digest = hashlib.sha256("\n".join(sorted(e.identifier for e in members)).encode())
    return GROUP_PREFIX + digest.hexdigest()[:48]


def form_groups(claim: Claim, *, window: float, using: str) -> list[DeliveryGroup]:
    """Group the claim's ungrouped sum-metric events by (customer, metric, window)."""
    buckets: defaultdict[tuple[str, int, int], list[UsageEvent]] = defaultdict(list)
    for event in claim.events:
        if event.group_id is None and event.metric.aggregation == Metric.Aggregation.SUM:
            bucket = int(event.occurred_at.timestamp() // window)
            buckets[(event.customer_id, event.metric_id, bucket)].append(event)
    groups = []
    with transaction.atomic(using=using):
        for members in buckets.values():
            total = sum(event.value for event in members)
            if len(members) < 2 or abs(total) > MAX_VALUE:
                continue
            try:
                groups.append(_create(claim, members, total, using))
            except _LostClaim:
                continue
    return groups


def _create(claim: Claim, members: list[UsageEvent], total: int, using: str) -> DeliveryGroup:
    with transaction.atomic(using=using):
        group = DeliveryGroup.objects.using(using).create(
            identifier=group_identifier(members),
            metric=members[0].metric,
            customer_id=members[0].customer_id,
            value=total,
            # The latest member's time: usage is never billed before it happened.
            occurred_at=max(event.occurred_at for event in members),
        )
        updated = (
            UsageEvent.objects.using(using)
            .filter(pk__in=[e.pk for e in members], claim_token=claim.token, group__isnull=True)
            .update(group=group)
        )
        if updated != len(members):
            raise _LostClaim
    for event in members:
        event.group = group
    return group
