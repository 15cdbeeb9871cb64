"""What a claim holds: plain data rather than model instances, since a batch is thousands of
rows and only a few columns of each are needed to send and mark them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from billflow_usage.backends.base import Result
from billflow_usage.models import DeliveryGroup, Metric

#: The ``UsageEvent`` columns read for each claimed row, in :class:`ClaimedEvent` order.
CLAIMED_FIELDS = (
    "pk",
    "metric_id",
    "customer_id",
    "value",
    "occurred_at",
    "identifier",
    "attempts",
    "group_id",
    "claimed_until",
    "created_at",
)


@dataclass(slots=True)
class ClaimedEvent:
    """One claimed ``UsageEvent`` row, as it was when claimed."""

    pk: int
    metric_id: int
    customer_id: str
    value: int
    occurred_at: datetime
    identifier: str
    attempts: int
    group_id: int | None
    #: Set when an earlier claim held the row (its worker died, or stalled past its lease).
    #: A claim that gives the row back without counting an attempt (refused credentials, a
    #: release) writes it back as it was, so :attr:`maybe_in_stripe` stays known.
    claimed_until: datetime | None
    #: When the row was recorded (delivery latency is measured from it).
    created_at: datetime

    @property
    def maybe_in_stripe(self) -> bool:
        """Whether Stripe may already hold the row under its own identifier: it was attempted,
        or claimed by a worker that never marked it. Such a row is never aggregated, or it
        would be billed twice (under its identifier and its group's)."""
        return self.attempts > 0 or self.claimed_until is not None


@dataclass
class Claim:
    """The events one worker holds, the token that proves it, and their metrics and groups."""

    token: uuid.UUID
    events: list[ClaimedEvent] = field(default_factory=list)
    metrics: dict[int, Metric] = field(default_factory=dict)
    groups: dict[int, DeliveryGroup] = field(default_factory=dict)


#: Each answer about a Stripe event, with the claimed rows that event stands for (one row, or
#: a delivery group's): what sending returns and marking writes back.
Outcomes = list[tuple[Sequence[ClaimedEvent], Result]]
