"""Turning claimed rows into what the backend sends, and sending it outside any transaction.

One Stripe event stands either for one row (sent under the row's identifier) or for a
delivery group (sent under the group's stored identifier and value). The backend gets a round
of ``DELIVERY_CONCURRENCY`` requests' worth of events at a time, to send in parallel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from django.utils import timezone

from billflow_usage.backends.base import BaseBackend, MeterEvent, Outcome, Result
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery import seconds
from billflow_usage.delivery.arrays import one_of
from billflow_usage.delivery.claimed import Claim, ClaimedEvent, Outcomes
from billflow_usage.models import DeliveryGroup, Metric, SubscriptionItemLink
from billflow_usage.validation import TOO_OLD_CODE, too_old_for_stripe, too_old_message

logger = logging.getLogger("billflow_usage")

#: Events per request in a round (a full v2 stream request); the time limit is looked at
#: between rounds.
CHUNK = 100

NOT_SENT = Result("", Outcome.NOT_SENT)


@dataclass
class Item:
    """One Stripe event and the ledger rows it stands for."""

    event: MeterEvent
    members: list[ClaimedEvent]


def plan(
    claim: Claim, *, using: str, subscription_items: bool = True, by_second: bool = False
) -> tuple[list[Item], Outcomes]:
    """The items to send, and the outcomes known without sending (group already accepted,
    too old for Stripe). ``subscription_items``: fill in each customer's stored item;
    ``by_second``: one item per customer, metric and second, carrying the whole second
    (see :mod:`~billflow_usage.delivery.seconds`)."""
    now = timezone.now()
    items: dict[str, Item] = {}
    decided: Outcomes = []
    for event in claim.events:
        group = None if event.group_id is None else claim.groups[event.group_id]
        if group is not None and group.status == DeliveryGroup.Status.SENT:
            decided.append(([event], Result(group.identifier, Outcome.DELIVERED)))
        elif (key := group.identifier if group else event.identifier) in items:
            items[key].members.append(event)
        else:
            metric = claim.metrics[event.metric_id]
            items[key] = Item(_meter_event(event, metric, group, claim.token.hex), [event])
    sendable = []
    for item in items.values():
        if too_old_for_stripe(item.event.timestamp, now=now):
            decided.append((item.members, _too_old(item.event, now)))
        else:
            sendable.append(item)
    if by_second:
        sendable, refused = seconds.by_second(sendable, using=using)
        decided += refused
    if subscription_items:
        _add_subscription_items(sendable, using)
    return sendable, decided


def send(
    items: Sequence[Item], backend: BaseBackend, *, deadline: float | None, probe: bool = False
) -> tuple[Outcomes, list[ClaimedEvent]]:
    """Send round after round; return the outcomes and the rows left unsent because the
    deadline passed first (between rounds, or within one: the backend answered ``NOT_SENT``).

    ``probe`` (the last batch had its credentials refused): send one event first, and when
    the sink refuses the credentials again, answer the others the same without sending
    them, rather than hammering it with requests that can't succeed.
    """
    outcomes: Outcomes = []
    if probe and items:
        outcomes = _round(items[:1], backend)
        [(_, answer)] = outcomes
        if answer.rejects_credentials:
            return outcomes + [(item.members, answer) for item in items[1:]], []
        items = items[1:]
    size = CHUNK * billflow_settings.DELIVERY_CONCURRENCY
    for start in range(0, len(items), size):
        if deadline is not None and time.monotonic() >= deadline:
            outcomes += [(item.members, NOT_SENT) for item in items[start:]]
            break
        outcomes += _round(items[start : start + size], backend)
    sent = [(rows, result) for rows, result in outcomes if result.outcome != Outcome.NOT_SENT]
    unsent = [
        row for rows, result in outcomes if result.outcome == Outcome.NOT_SENT for row in rows
    ]
    return sent, unsent


def _round(items: Sequence[Item], backend: BaseBackend) -> Outcomes:
    """One call to the backend; each item with its result."""
    by_key = {result.key: result for result in _call(backend, [i.event for i in items])}
    return [
        (
            item.members,
            by_key.get(item.event.identifier)
            or Result(
                item.event.identifier,
                Outcome.RETRY,
                "no_result",
                f"{type(backend).__name__} returned no result for this event.",
            ),
        )
        for item in items
    ]


def _call(backend: BaseBackend, events: list[MeterEvent]) -> list[Result]:
    try:
        return backend.send_meter_events(events)
    except Exception as exc:
        # A bug or an unexpected failure in the sink must not strand claimed rows.
        logger.exception("%s failed to send %d event(s)", type(backend).__name__, len(events))
        message = f"{type(backend).__name__} raised {type(exc).__name__}; see the logs."
        return [Result(e.identifier, Outcome.RETRY, "backend_error", message) for e in events]


def _meter_event(
    event: ClaimedEvent, metric: Metric, group: DeliveryGroup | None, claim: str
) -> MeterEvent:
    source = group or event
    return MeterEvent(
        identifier=source.identifier,
        event_name=metric.meter_event_name,
        customer_id=source.customer_id,
        value=source.value,
        timestamp=source.occurred_at,
        attempt=event.attempts,
        claim=claim,
    )


def _too_old(event: MeterEvent, now: datetime) -> Result:
    return Result(
        event.identifier, Outcome.FAILED, TOO_OLD_CODE, too_old_message(event.timestamp, now=now)
    )


def _add_subscription_items(items: list[Item], using: str) -> None:
    """Fill in each customer's stored subscription item (legacy usage records need it)."""
    if not items:
        return
    firsts = [item.members[0] for item in items]
    rows = (
        SubscriptionItemLink.objects.using(using)
        .filter(
            one_of("customer_id", {e.customer_id for e in firsts}, using),
            active=True,
            metric_id__in={e.metric_id for e in firsts},
        )
        .exclude(stripe_subscription_item_id="")
        .values_list("customer_id", "metric_id", "stripe_subscription_item_id")
    )
    found = {(customer, metric): item_id for customer, metric, item_id in rows}
    for item, first in zip(items, firsts, strict=True):
        item_id = found.get((first.customer_id, first.metric_id), "")
        item.event = replace(item.event, subscription_item_id=item_id)
