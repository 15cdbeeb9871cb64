"""Hourly totals of the ledger, kept off the hot path so a period's usage costs a few rows.

A ledger row is *folded* into its hour's :class:`UsageHourTotal` by the folding step
(``billflow_usage.usage_limits.folding``, run by workers), never by the save that records it:
recording stays one INSERT. Until then the row is *unfolded* (``UsageEvent.folded`` is
false, and a small partial index finds it), and readers add it live. Cancelling a folded row
recomputes its hour from the folded rows (:func:`recompute_hours`), so totals stay exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from django.db import models
from django.db.models import Count, Sum
from django.utils.translation import gettext_lazy as _

from billflow_usage.models.limits import STRIPE_ID_MAX_LENGTH
from billflow_usage.models.metric import Metric
from billflow_usage.models.tallied import TalliedUsage
from billflow_usage.models.tally import Tally

HOUR = timedelta(hours=1)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour containing ``moment``."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class UsageHourTotal(TalliedUsage):
    """One customer's usage of one metric in one UTC hour, over the folded ledger rows that
    stand for usage (not cancelled, not ``billflow_sync``'s corrections)."""

    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="+")
    customer_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH)
    hour = models.DateTimeField()

    class Meta:
        verbose_name = _("hourly usage total")
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "metric", "hour"], name="bfu_hour_total_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} / {self.metric_id} at {self.hour:%Y-%m-%d %H:00}: {self.total}"


#: (metric id, customer ID, hour start)
HourKey = tuple[int, str, datetime]


def add_to_hours(tallies: dict[HourKey, Tally], using: str) -> None:
    """Add each key's tally to its hour's total, creating missing hours. The hours stay
    locked (taken in key order, so two folds never deadlock) until the transaction ends."""
    if not tallies:
        return
    UsageHourTotal.objects.using(using).bulk_create(
        [UsageHourTotal(metric_id=m, customer_id=c, hour=h) for m, c, h in sorted(tallies)],
        ignore_conflicts=True,
    )
    changed = []
    for bucket in locked_hours(tallies, using):
        key = (bucket.metric_id, bucket.customer_id, bucket.hour)
        if key in tallies:
            bucket.set_tally(bucket.tally.merge(tallies[key]))
            changed.append(bucket)
    UsageHourTotal.objects.using(using).bulk_update(
        changed, UsageHourTotal.TALLY_FIELDS, batch_size=1000
    )


def recompute_hours(keys: Iterable[HourKey], using: str) -> None:
    """Recount the given hours from their folded rows: after some of them were cancelled."""
    from billflow_usage.models.usage_event import UsageEvent

    wanted = set(keys)
    for bucket in locked_hours(wanted, using):
        if (bucket.metric_id, bucket.customer_id, bucket.hour) not in wanted:
            continue
        rows = (
            UsageEvent.objects.using(using)
            .filter(
                metric_id=bucket.metric_id,
                customer_id=bucket.customer_id,
                occurred_at__gte=bucket.hour,
                occurred_at__lt=bucket.hour + HOUR,
                folded=True,
            )
            .usage()
            .order_by()
        )
        figures = rows.aggregate(total=Sum("value"), events=Count("pk"))
        tally = Tally(None, figures["total"] or 0, figures["events"])
        latest = rows.order_by("-occurred_at", "-pk").values_list("value", "occurred_at", "pk")
        for value, at, pk in latest[:1]:
            tally = replace(tally, last_value=value, last_at=at, last_id=pk)
        bucket.set_tally(tally)
        bucket.save(using=using, update_fields=UsageHourTotal.TALLY_FIELDS)


def locked_hours(keys: Iterable[HourKey], using: str) -> list[UsageHourTotal]:
    """The existing hours among ``keys`` (and perhaps a few more), locked in a fixed order."""
    keys = list(keys)
    return list(
        UsageHourTotal.objects.using(using)
        .select_for_update()
        .filter(
            metric_id__in={m for m, _, _ in keys},
            customer_id__in={c for _, c, _ in keys},
            hour__in={h for _, _, h in keys},
        )
        .order_by("customer_id", "metric_id", "hour")
    )
