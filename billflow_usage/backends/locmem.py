"""A backend that keeps what it would send in :data:`outbox`, like Django's ``mail.outbox``.

The shipped pytest plugin empties it before each test.
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
)

outbox: list[MeterEvent | QuantityPush | Cancellation] = []
_lock = threading.Lock()


class LocMemBackend(BaseBackend):
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
