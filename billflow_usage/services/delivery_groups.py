"""Rows aggregated into one Stripe event (a delivery group) are acted on together or not at
all: which groups a selection holds all of, and which only part of, from grouped counts (a
few queries whatever the selection's size)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from django.db.models import Count, QuerySet

from billflow_usage.models import DeliveryGroup, UsageEvent

#: Partly selected groups named one message each; the others are counted in one more.
NAMED_GROUPS = 5


@dataclass(frozen=True)
class PartialGroup:
    identifier: str
    #: How many of its rows are selected.
    selected: int


@dataclass
class GroupSelection:
    #: Group pk -> its number of rows, for groups whose rows are all selected.
    whole: dict[int, int] = field(default_factory=dict)
    #: Group pk -> what is known of it, for groups only part of whose rows are selected.
    partial: dict[int, PartialGroup] = field(default_factory=dict)


def select_groups(selected: QuerySet[UsageEvent], group_ids: Collection[int]) -> GroupSelection:
    """How much of each of these groups ``selected`` holds."""
    if not group_ids:
        return GroupSelection()
    totals = _sizes(UsageEvent.objects.filter(group_id__in=list(group_ids)))
    chosen = _sizes(selected.filter(group_id__in=list(group_ids)))
    selection = GroupSelection()
    partly = {pk: count for pk, count in chosen.items() if count < totals[pk]}
    identifiers = dict(
        DeliveryGroup.objects.filter(pk__in=list(partly)).values_list("pk", "identifier")
    )
    for pk, count in chosen.items():
        if pk in partly:
            selection.partial[pk] = PartialGroup(identifiers[pk], count)
        else:
            selection.whole[pk] = count
    return selection


def refusals(partial: dict[int, PartialGroup], *, verb: str) -> list[str]:
    """What to tell the user about partly selected groups, ``verb`` being what was refused
    ("cancelled", "retried")."""
    groups = sorted(partial.values(), key=lambda group: group.identifier)
    messages = [
        f"{group.selected} selected event(s) are aggregated with other rows into one Stripe "
        f"event ({group.identifier}), which can only be {verb} as a whole: search the ledger "
        f"for {group.identifier} and select all its rows."
        for group in groups[:NAMED_GROUPS]
    ]
    others = groups[NAMED_GROUPS:]
    if others:
        messages.append(
            f"{sum(group.selected for group in others)} more selected event(s) belong to "
            f"{len(others)} other partly selected aggregated event(s) and were not {verb}."
        )
    return messages


def _sizes(rows: QuerySet[UsageEvent]) -> dict[int, int]:
    counted = rows.order_by().values("group_id").annotate(rows=Count("pk"))
    return dict(counted.values_list("group_id", "rows"))
