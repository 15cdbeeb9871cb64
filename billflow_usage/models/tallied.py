"""The figures a stored total keeps of the ledger rows it stands for: the hourly totals of
folded rows and the daily rollups of pruned ones keep the same five, as a :class:`Tally`."""

from __future__ import annotations

from django.db import models

from billflow_usage.models.tally import Tally


class TalliedUsage(models.Model):
    """Sum, count and last row of some usage rows, the figures every Stripe meter formula
    needs. Abstract: its fields are each child's own columns."""

    total = models.BigIntegerField(default=0)
    events = models.BigIntegerField(default=0)
    #: The value of the last row, its time and its id (which breaks ties).
    last_value = models.BigIntegerField(null=True, blank=True)
    last_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.BigIntegerField(null=True, blank=True)

    #: What :meth:`set_tally` changes.
    TALLY_FIELDS = ("total", "events", "last_value", "last_at", "last_event_id")

    class Meta:
        abstract = True

    @property
    def tally_formula(self) -> str | None:
        """The formula :attr:`tally` is read by: none here (any reader's)."""
        return None

    @property
    def tally(self) -> Tally:
        return Tally(
            self.tally_formula,
            self.total,
            self.events,
            self.last_value,
            self.last_at,
            self.last_event_id,
        )

    def set_tally(self, tally: Tally) -> None:
        self.total, self.events = tally.total, tally.events
        self.last_value, self.last_at = tally.last_value, tally.last_at
        self.last_event_id = tally.last_id
