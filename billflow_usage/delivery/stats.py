"""What one delivery run did, for callers, the worker's output and the batch log line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import ClassVar


@dataclass
class DeliveryStats:
    """Counts for one batch or a whole run (batches add up with ``+=``)."""

    batches: int = 0
    #: Usage events claimed, and what became of them.
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    #: Claimed events given back unsent because the time limit ran out.
    released: int = 0
    #: Events waiting because the sink refused our credentials (not counted in ``retried``).
    refused: int = 0
    #: Seat quantities claimed, pushed, scheduled again or failed.
    seats_claimed: int = 0
    seats_pushed: int = 0
    seats_retried: int = 0
    seats_failed: int = 0
    #: Seat pushes waiting because the sink refused our credentials.
    seats_refused: int = 0

    def __iadd__(self, other: DeliveryStats) -> DeliveryStats:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        return self

    #: A seat push's outcome (:func:`~billflow_usage.delivery.observed.seat_outcome`) ->
    #: the field counting it.
    SEAT_FIELDS: ClassVar[dict[str, str]] = {
        "pushed": "seats_pushed",
        "retry": "seats_retried",
        "failed": "seats_failed",
        "refused": "seats_refused",
    }

    def count_seat(self, outcome: str) -> None:
        name = self.SEAT_FIELDS[outcome]
        setattr(self, name, getattr(self, name) + 1)

    @property
    def idle(self) -> bool:
        """Nothing was due: the caller may sleep."""
        return self.claimed == 0 and self.seats_claimed == 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        """One human line, as the worker prints and the engine logs."""
        line = (
            f"{self.claimed} claimed: {self.delivered} delivered, {self.retried} to retry, "
            f"{self.failed} failed, {self.released} released; seats: {self.seats_pushed} "
            f"pushed, {self.seats_retried} to retry, {self.seats_failed} failed"
        )
        if self.refused or self.seats_refused:
            waiting = self.refused + self.seats_refused
            line += f"; {waiting} waiting on rejected credentials"
        return line
