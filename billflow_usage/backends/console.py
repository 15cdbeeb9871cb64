"""A backend that prints what it would send, one line per item (for development)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from billflow_usage.backends.base import (
    BaseBackend,
    Cancellation,
    MeterEvent,
    Outcome,
    QuantityPush,
    Result,
)


class ConsoleBackend(BaseBackend):
    one_call_per_customer_meter = False
    needs_subscription_items = False

    def __init__(self, stream: TextIO | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send_meter_events(self, events: Sequence[MeterEvent]) -> list[Result]:
        self._write(
            f"meter event {e.identifier}: {e.event_name} +{e.value} for {e.customer_id} "
            f"at {e.timestamp.isoformat()}"
            for e in events
        )
        return [Result(event.identifier, Outcome.DELIVERED) for event in events]

    def push_quantity(self, push: QuantityPush) -> Result:
        self._write(
            [
                f"quantity {push.subscription_item_id} = {push.quantity} "
                f"(proration: {push.proration_behavior})"
            ]
        )
        return Result(push.subscription_item_id, Outcome.DELIVERED)

    def cancel_meter_event(self, cancellation: Cancellation) -> Result:
        self._write([f"cancel {cancellation.identifier} ({cancellation.event_name})"])
        return Result(cancellation.identifier, Outcome.DELIVERED)

    def _write(self, lines: Any) -> None:
        with self._lock:
            for line in lines:
                self.stream.write(line + "\n")
            self.stream.flush()
