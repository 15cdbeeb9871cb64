"""Billing periods: the subscription item's current period, else the UTC calendar month.

One home for the rule, shared by the admin's usage page and customer-facing usage
(``current_usage``, ``check_limit``). Stripe files meter events by the minute, so a stored
period's edges are floored to the minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta


def minute_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class Period:
    """``[start, end)``; ``from_subscription`` is False for the calendar-month fallback."""

    start: datetime
    end: datetime
    from_subscription: bool = True

    def days(self, *, until: datetime | None = None) -> list[date]:
        """The UTC days of the period, or of its part up to ``until``."""
        last_moment = self.end - timedelta(microseconds=1)
        if until is not None:
            last_moment = min(last_moment, until)
        first, last = self.start.astimezone(UTC).date(), last_moment.astimezone(UTC).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end


def calendar_month(now: datetime) -> Period:
    """The UTC calendar month around ``now``: the period of a metric without a subscription."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return Period(start, end, from_subscription=False)


def stored_period(start: datetime | None, end: datetime | None) -> Period | None:
    """A subscription item's stored current period, or None while none is stored."""
    if start is None or end is None:
        return None
    return Period(minute_floor(start), minute_floor(end))


def period_at(moment: datetime, start: datetime | None, end: datetime | None) -> Period:
    """The billing period containing ``moment``: the stored subscription period when it
    contains it, else the calendar month (no link, or a period ``billflow_sync`` has not
    refreshed yet, or a moment outside it)."""
    stored = stored_period(start, end)
    if stored is not None and moment in stored:
        return stored
    return calendar_month(moment)
