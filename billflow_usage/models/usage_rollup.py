from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billflow_usage.models.limits import STRIPE_ID_MAX_LENGTH
from billflow_usage.models.metric import Metric
from billflow_usage.models.tallied import TalliedUsage
from billflow_usage.models.tally import Tally, merge_into


def day_start(day: date) -> datetime:
    """The UTC midnight that starts ``day``."""
    return datetime.combine(day, time(), tzinfo=UTC)


def days_starting_in(start: datetime, end: datetime) -> tuple[date, date]:
    """``[first, stop)``: the UTC days whose midnight falls in ``[start, end)``, the days a
    window counts whole when they are compacted."""

    def first_midnight_from(moment: datetime) -> date:
        day = moment.astimezone(UTC).date()
        return day if day_start(day) >= moment else day + timedelta(days=1)

    return first_midnight_from(start), first_midnight_from(end)


class UsageRollupQuerySet(models.QuerySet["UsageRollup"]):
    def tallies(self, key: str) -> dict[tuple[Any, ...], Tally]:
        """Keyed by ``(metric_id, key)`` as :meth:`UsageEventQuerySet.tallies`."""
        found: dict[tuple[Any, ...], Tally] = {}
        for metric_pk, value, formula, *figures in self.values_list(
            "metric_id", key, "metric__aggregation", *TalliedUsage.TALLY_FIELDS
        ).order_by():
            merge_into(found, (metric_pk, value), Tally(formula, *figures))
        return found


class UsageRollup(TalliedUsage):
    """One customer's delivered usage of one metric on one UTC day, standing for the ledger
    rows ``billflow_prune`` compacted: their sum, count and last value (with when it was
    billed), the figures Stripe's meter formulas need.

    Only rows Stripe accepted (``sent``) and that count as usage are in it; cancelled rows
    are deleted without being counted, as the ledger's totals leave them out. Readers add
    rollups to the detail rows through :func:`billflow_usage.models.usage_totals.usage_totals`.
    """

    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="rollups")
    customer_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH)
    #: The UTC day Stripe filed the rows (a delivery group's time for aggregated rows).
    day = models.DateField()
    #: How many rows (cancelled ones too) were deleted into this rollup.
    compacted_rows = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UsageRollupQuerySet.as_manager()

    #: What :meth:`absorb` changes.
    FIGURES = (*TalliedUsage.TALLY_FIELDS, "compacted_rows", "updated_at")

    class Meta:
        verbose_name = _("usage rollup")
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "metric", "day"], name="bfu_rollup_unique_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.total} x {self.metric_id} for {self.customer_id}"

    @property
    def tally_formula(self) -> str:
        """The metric's: a rollup stands for rows of one metric, billed last at ``last_at``."""
        return self.metric.aggregation

    def absorb(self, tally: Tally, rows: int) -> None:
        """Add the tally of ``rows`` rows being deleted to the rollup."""
        self.set_tally(self.tally.merge(tally))
        self.compacted_rows += rows
        self.updated_at = timezone.now()
