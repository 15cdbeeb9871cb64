"""One request per event (v1 meter events, legacy usage records), at most one in flight per
customer and meter.

Stripe allows one concurrent meter event call per customer per meter, so events are
partitioned by (customer, event name): partitions run in parallel threads, the events of one
partition strictly one after another. With a deadline, a partition starts no request after
it: its remaining events answer ``NOT_SENT``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import stripe

from billflow_usage.backends.base import MeterEvent, Outcome, Result
from billflow_usage.backends.stripe.errors import result_for_error
from billflow_usage.backends.stripe.keys import identifier_key, meter_event_key
from billflow_usage.backends.stripe.usage_records import Unrecordable, refuse_unrecordable

#: Usage records were removed in 2025-03-31.basil; older accounts pin the last version.
LEGACY_API_VERSION = "2025-02-24.acacia"

Sender = Callable[[MeterEvent], None]


def send_partitioned(
    events: Sequence[MeterEvent],
    send: Sender,
    *,
    pool: Executor | None,
    deadline: float | None = None,
) -> list[Result]:
    """Send every event with ``send``; each (customer, event name) partition is one task in
    ``pool`` (or all inline without one), its events strictly one after another, none
    started after ``deadline`` (``time.monotonic()``)."""
    partitions: defaultdict[tuple[str, str], list[MeterEvent]] = defaultdict(list)
    for event in events:
        partitions[(event.customer_id, event.event_name)].append(event)

    def run(partition: list[MeterEvent]) -> list[Result]:
        return [
            Result(event.identifier, Outcome.NOT_SENT)
            if deadline is not None and time.monotonic() >= deadline
            else _attempt(send, event)
            for event in partition
        ]

    if pool is None or len(partitions) == 1:
        return [result for part in partitions.values() for result in run(part)]
    return [result for results in pool.map(run, partitions.values()) for result in results]


def v1_sender(client: stripe.StripeClient) -> Sender:
    """``POST /v1/billing/meter_events`` with the ledger identifier as Stripe's identifier."""

    def send(event: MeterEvent) -> None:
        client.v1.billing.meter_events.create(
            {
                "event_name": event.event_name,
                "identifier": event.identifier,
                "payload": {"stripe_customer_id": event.customer_id, "value": str(event.value)},
                "timestamp": int(event.timestamp.timestamp()),
            },
            # A new key per attempt and claim: a retry, or a redo after a crash, is a fresh
            # request (Stripe replays a stored answer to a reused key, a refusal included);
            # the identifier deduplicates it.
            {"idempotency_key": meter_event_key(event)},
        )

    return send


def legacy_sender(client: stripe.StripeClient) -> Sender:
    """Legacy usage records on the event's subscription item, at the pinned API version.

    Usage records have no identifier, so each one sets (``action=set``) the whole second it
    falls in (:attr:`MeterEvent.second_total`): sending it again, after any answer, sets the
    same figure. That makes a new key per attempt safe, so a 500 Stripe stored under one
    key never blocks the event (see :mod:`billflow_usage.delivery.seconds`).
    """

    def send(event: MeterEvent) -> None:
        refuse_unrecordable(event)
        if not event.subscription_item_id:
            raise MissingSubscriptionItem(event)
        total = event.value if event.second_total is None else event.second_total
        params: dict[str, Any] = {
            "quantity": total,
            "timestamp": int(event.timestamp.timestamp()),
            "action": "set",
            "stripe_version": LEGACY_API_VERSION,
            # The figure is part of the key: a redo after a crash with the same figure
            # repeats the request, while a changed figure is a new request, not a mismatch.
            "idempotency_key": identifier_key(
                "bfu-ur", event.identifier, event.attempt, event.claim, total
            ),
        }
        client.raw_request(
            "post", f"/v1/subscription_items/{event.subscription_item_id}/usage_records", **params
        )

    return send


class MissingSubscriptionItem(Exception):
    """Legacy usage records need the customer's subscription item, which is not known yet."""

    def __init__(self, event: MeterEvent) -> None:
        super().__init__(
            f"{event.customer_id} has no stored subscription item for {event.event_name!r}, "
            "which legacy usage records are sent to; run manage.py billflow_sync (or store "
            "the item's ID on its subscription item link) and the event is retried."
        )


def _attempt(send: Sender, event: MeterEvent) -> Result:
    try:
        send(event)
    except MissingSubscriptionItem as exc:
        return Result(event.identifier, Outcome.RETRY, "no_subscription_item", str(exc))
    except Unrecordable as exc:
        return Result(event.identifier, exc.outcome, exc.code, str(exc))
    except Exception as exc:
        return result_for_error(event.identifier, exc)
    return Result(event.identifier, Outcome.DELIVERED)
