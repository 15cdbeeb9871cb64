"""What legacy usage records can't carry, refused before sending.

Stripe refuses usage records with a negative quantity or a timestamp in the future. The
ledger refuses both when ``METER_API`` is ``legacy``, but a row recorded in another mode (or
before an upgrade) may still carry them: it is never sent as it is.
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
    """Raise :class:`Unrecordable` for an event Stripe would refuse as a usage record: a
    negative one fails for good, a future one waits for its time."""
    if event.value < 0:
        raise Unrecordable(
            Outcome.FAILED,
            "usage_record_negative",
            f"Legacy usage records can't be negative ({event.value}), so it was not sent; "
            "correct the period in Stripe instead (a credit note), or send it with "
            "METER_API 'v1' or 'v2' to a sum meter.",
        )
    if event.timestamp > datetime.now(UTC):
        raise Unrecordable(
            Outcome.RETRY,
            "usage_record_in_future",
            f"Legacy usage records can't be in the future ({event.timestamp.isoformat()}), so "
            "it was not sent yet; it is retried once its time has come.",
        )
