"""The interface every delivery sink implements.

Backends take and return plain data: they never import models, the registry or the ledger,
so adding a sink (Lago, OpenMeter, Metronome) is one new module and the ledger never calls
the network.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class MeterEvent:
    """One ledger row (or an aggregate of several) as the sink should receive it."""

    identifier: str
    event_name: str
    customer_id: str
    value: int
    timestamp: datetime
    #: Only the ``legacy`` usage-record API needs the customer's subscription item.
    subscription_item_id: str = ""
    #: Attempts already made: sinks derive per-attempt idempotency keys from it, so a retry
    #: after an error is a new request while a redo after a crash repeats the same one.
    attempt: int = 0


@dataclass(frozen=True)
class QuantityPush:
    """Set a licensed subscription item's quantity (absolute, so a retry is harmless)."""

    subscription_item_id: str
    quantity: int
    proration_behavior: str
    idempotency_key: str


@dataclass(frozen=True)
class Cancellation:
    """Cancel a meter event Stripe received less than 24 hours ago."""

    event_name: str
    identifier: str


class Outcome(StrEnum):
    DELIVERED = "delivered"
    #: Try again later (network, 5xx, 429, lock timeouts, expired sessions).
    RETRY = "retry"
    #: Will not succeed as it is: keep the code and message for a human.
    FAILED = "failed"


@dataclass(frozen=True)
class Result:
    """What happened to one item; ``key`` is its identifier or subscription item ID."""

    key: str
    outcome: Outcome
    code: str = ""
    message: str = ""
    #: Seconds the sink asked us to wait before the next attempt, when it said.
    retry_after: float | None = None


class BaseBackend(abc.ABC):
    """A sink for usage. One instance may serve many batches; ``close()`` releases it."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    @abc.abstractmethod
    def send_meter_events(self, events: Sequence[MeterEvent]) -> list[Result]:
        """Send events; return one Result per event, in any order, keyed by identifier."""

    @abc.abstractmethod
    def push_quantity(self, push: QuantityPush) -> Result:
        """Set a subscription item's quantity."""

    @abc.abstractmethod
    def cancel_meter_event(self, cancellation: Cancellation) -> Result:
        """Cancel a recently sent event."""

    def close(self) -> None:  # noqa: B027 - optional hook, most sinks hold nothing
        """Release connections or sessions."""
