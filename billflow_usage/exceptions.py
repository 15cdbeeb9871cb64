"""Errors raised to callers. Each message says what was wrong and what to do about it."""


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
