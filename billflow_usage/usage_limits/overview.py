"""The limits section of the admin's per-customer usage page: for each metered metric with
a limit that applies to the customer, the usage, what is left and the thresholds crossed."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from billflow_usage.models import Metric, UsageLimit, UsageThresholdCrossing
from billflow_usage.usage_limits.checking import LimitStatus, applicable_limit, status_in
from billflow_usage.usage_limits.usage import billing_period


@dataclass(frozen=True)
class LimitRow:
    metric: Metric
    limit: UsageLimit
    status: LimitStatus
    #: Thresholds (percent) already crossed in this period, ascending.
    crossed: list[int]


def customer_limits(customer_id: str) -> list[LimitRow]:
    """A row per metric whose limit applies to ``customer_id`` (a few queries per metric)."""
    metric_ids = UsageLimit.objects.values_list("metric_id", flat=True).distinct()
    metrics = Metric.objects.filter(pk__in=metric_ids, kind=Metric.Kind.METERED, active=True)
    now = timezone.now()
    rows = []
    for metric in metrics.order_by("key"):
        limit = applicable_limit(metric, customer_id)
        if limit is None:
            continue
        period = billing_period(metric, customer_id, now)
        crossed = UsageThresholdCrossing.objects.filter(
            metric=metric, customer_id=customer_id, period_start=period.start
        ).order_by("threshold")
        rows.append(
            LimitRow(
                metric,
                limit,
                status_in(metric, customer_id, period, 0),
                list(crossed.values_list("threshold", flat=True)),
            )
        )
    return rows
