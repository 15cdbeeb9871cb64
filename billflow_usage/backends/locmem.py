"""A backend that keeps what it would send in :data:`outbox`, like Django's ``mail.outbox``.

The shipped pytest plugin empties it before each test. For ``billflow_sync`` it answers usage
totals from the outbox (events not cancelled, by the query's formula); it has no
subscriptions or meters to list.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from billflow_usage.backends.base import (
    BaseBackend,
    Cancellation,
    MeterEvent,
    Outcome,
    QuantityPush,
    Result,
    UsageQuery,
    UsageTotal,
)

outbox: list[MeterEvent | QuantityPush | Cancellation] = []
_lock = threading.Lock()


class LocMemBackend(BaseBackend):
    one_call_per_customer_meter = False
    needs_subscription_items = False

    def send_meter_events(self, events: Sequence[MeterEvent]) -> list[Result]:
        with _lock:
            outbox.extend(events)
        return [Result(event.identifier, Outcome.DELIVERED) for event in events]

    def push_quantity(self, push: QuantityPush) -> Result:
        with _lock:
            outbox.append(push)
        return Result(push.subscription_item_id, Outcome.DELIVERED)

    def cancel_meter_event(self, cancellation: Cancellation) -> Result:
        with _lock:
            outbox.append(cancellation)
        return Result(cancellation.identifier, Outcome.DELIVERED)

    def usage_total(self, query: UsageQuery) -> UsageTotal:
        with _lock:
            cancelled = {c.identifier for c in outbox if isinstance(c, Cancellation)}
            events = [
                e
                for e in outbox
                if isinstance(e, MeterEvent)
                and e.event_name == query.event_name
                and e.customer_id == query.customer_id
                and query.start <= e.timestamp < query.end
                and e.identifier not in cancelled
            ]
        if query.formula == "count":
            return UsageTotal(len(events))
        if query.formula == "last":
            return UsageTotal(max(events, key=lambda e: e.timestamp).value if events else 0)
        return UsageTotal(sum(e.value for e in events))
