"""A figure of usage that can be added to another: what the ledger's detail rows, the daily
rollups that replaced some of them (see :mod:`billflow_usage.models.usage_rollup`) and the
hourly totals of folded rows (see :mod:`billflow_usage.models.usage_total`) all reduce to, so
a total over any of them is the total over the rows as they were."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from billflow_usage.models.metric import Metric

Key = TypeVar("Key")


@dataclass(frozen=True)
class Tally:
    """Sum, count and last value of some usage rows of one metric. ``formula``: the metric's
    aggregation, or None for figures kept for every formula (the hourly totals), read with
    :meth:`by_formula`. ``last_at``/``last_id`` place the last value: the latest row by the
    caller's time (when billed, or when it occurred), of two at the same moment the one
    recorded last (the higher id); None without rows, or when the caller left it out because
    the formula isn't ``last`` (nobody asks)."""

    formula: str | None = None
    total: int = 0
    events: int = 0
    last_value: int | None = None
    last_at: datetime | None = None
    last_id: int | None = None

    @classmethod
    def of_row(cls, value: int, at: datetime, row_id: int) -> Tally:
        """The tally of one row, for any formula."""
        return cls(None, value, 1, value, at, row_id)

    def merge(self, other: Tally) -> Tally:
        """The tally of both sets of rows (which never share a row)."""
        latest = self if _later(self, other) else other
        return Tally(
            self.formula,
            self.total + other.total,
            self.events + other.events,
            latest.last_value,
            latest.last_at,
            latest.last_id,
        )

    @property
    def value(self) -> int:
        """The figure by the metric's formula, as its Stripe meter computes it."""
        if self.formula is None:
            raise ValueError("This tally has no formula: read it with by_formula(aggregation).")
        return self.by_formula(self.formula)

    def by_formula(self, formula: str) -> int:
        """The figure by ``formula`` (a :class:`Metric.Aggregation`)."""
        if formula == Metric.Aggregation.COUNT:
            return self.events
        if formula == Metric.Aggregation.LAST:
            return self.last_value or 0
        return self.total


def _later(one: Tally, other: Tally) -> bool:
    if other.last_at is None or other.last_id is None:
        return True
    if one.last_at is None or one.last_id is None:
        return False
    return (one.last_at, one.last_id) > (other.last_at, other.last_id)


def merge_into(tallies: dict[Key, Tally], key: Key, tally: Tally) -> None:
    """Add ``tally`` to ``tallies[key]``."""
    found = tallies.get(key)
    tallies[key] = tally if found is None else found.merge(tally)
