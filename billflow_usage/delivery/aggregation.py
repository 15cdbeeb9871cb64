"""Optional aggregation: the claimed events of one customer and sum metric within one closed
window become a single Stripe event.

Groups are formed inside the claim's transaction: the group rows, each with an identifier
derived from its members' identifiers, are created, and the same UPDATE that claims the
members points them at their group, so both commit before anything is sent. A worker that
crashes after that leaves the members pending with their group; whoever claims them next
sends the group again under the same identifier, which Stripe deduplicates. A row Stripe may
hold already under its own identifier (attempted, or claimed by a worker that died) is never
grouped: it keeps being sent under its own identifier.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from billflow_usage.delivery.claimed import ClaimedEvent
from billflow_usage.identifiers import GROUP_PREFIX, derived_identifier
from billflow_usage.models import DeliveryGroup, Metric
from billflow_usage.models.limits import MAX_VALUE

Formed = list[tuple[DeliveryGroup, list[ClaimedEvent]]]


def group_identifier(identifiers: Iterable[str], *, using: str | None = None) -> str:
    """Deterministic in the set of members, so the same events always make the same group;
    the installation's namespace keeps another database's groups of alike-named events
    apart."""
    return derived_identifier(GROUP_PREFIX, sorted(identifiers), digits=48, using=using)


def form_groups(
    events: Sequence[ClaimedEvent], metrics: Mapping[int, Metric], *, window: float, using: str
) -> Formed:
    """Create a group for each (customer, sum metric, window) holding two or more ungrouped
    events Stripe can't hold yet (never attempted, never claimed before); the caller points
    the members at it."""
    buckets: defaultdict[tuple[str, int, int], list[ClaimedEvent]] = defaultdict(list)
    summed = {pk for pk, metric in metrics.items() if metric.aggregation == Metric.Aggregation.SUM}
    for event in events:
        if event.group_id is None and not event.maybe_in_stripe and event.metric_id in summed:
            bucket = int(event.occurred_at.timestamp() // window)
            buckets[(event.customer_id, event.metric_id, bucket)].append(event)
    formed: Formed = []
    for members in buckets.values():
        total = sum(event.value for event in members)
        if len(members) < 2 or abs(total) > MAX_VALUE:
            continue
        group = DeliveryGroup(
            identifier=group_identifier((event.identifier for event in members), using=using),
            metric=metrics[members[0].metric_id],
            customer_id=members[0].customer_id,
            value=total,
            # The latest member's time: usage is never billed before it happened.
            occurred_at=max(event.occurred_at for event in members),
        )
        formed.append((group, members))
    DeliveryGroup.objects.using(using).bulk_create([group for group, _ in formed])
    return formed
