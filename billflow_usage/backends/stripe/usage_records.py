"""What legacy usage records can't carry yet, held back before sending.

Stripe refuses usage records timestamped in the future. The ledger refuses them when
``METER_API`` is ``legacy``, but a row recorded in another mode (or before an upgrade) may
still carry one: it waits for its time instead of being sent. (Negative rows never get here:
delivery fails them before sending, see :mod:`billflow_usage.delivery.seconds`.)
"""

from __future__ import annotations

from datetime import UTC, datetime

from billflow_usage.backends.base import MeterEvent, Outcome


class Unrecordable(Exception):
    """A usage record Stripe would refuse, not sent: ``outcome`` says whether time fixes it."""

    def __init__(self, outcome: Outcome, code: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.code = code


def refuse_unrecordable(event: MeterEvent) -> None:
    """Raise :class:`Unrecordable` for an event Stripe would refuse as a usage record now: a
    future one waits for its time."""
    if event.timestamp > datetime.now(UTC):
        raise Unrecordable(
            Outcome.RETRY,
            "usage_record_in_future",
            f"Legacy usage records can't be in the future ({event.timestamp.isoformat()}), so "
            "it was not sent yet; it is retried once its time has come.",
        )
