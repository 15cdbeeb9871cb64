"""Errors raised to callers. Each message says what was wrong and what to do about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billflow_usage.usage_limits.checking import LimitStatus as LimitStatusLike


class BillflowUsageError(Exception):
    """Base class of every error this app raises on purpose."""


class InvalidUsage(BillflowUsageError, ValueError):
    """The input to record_usage / set_quantity was malformed; nothing was recorded."""


class UnknownMetric(InvalidUsage, LookupError):
    """No active metric has the given key."""


class WrongMetricKind(InvalidUsage):
    """A licensed metric was given to record_usage, or a metered one to set_quantity."""


class IdentifierConflict(InvalidUsage):
    """The identifier is already in the ledger with other content."""


class MalformedEvent(BillflowUsageError, ValueError):
    """A Stripe event is not shaped like Stripe's; the message names the field. Nothing was
    marked."""


class LimitExceeded(BillflowUsageError):
    """A hard usage limit refused the usage; nothing was recorded. ``status`` is the
    :class:`~billflow_usage.usage_limits.checking.LimitStatus` that refused it."""

    def __init__(self, status: LimitStatusLike) -> None:
        self.status = status
        super().__init__(
            f"{status.customer_id} has used {status.used} of {status.limit} {status.metric} "
            f"this period (hard limit, until {status.period_end.isoformat()}); nothing was "
            "recorded. Raise the limit (UsageLimit) or try again after the period ends."
        )
