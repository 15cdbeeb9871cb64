"""Look up the metric a caller names, with errors that say how to fix the name."""

from __future__ import annotations

from billflow_usage.exceptions import UnknownMetric, WrongMetricKind
from billflow_usage.models import Metric

KIND_API = {
    Metric.Kind.METERED: "record_usage()",
    Metric.Kind.LICENSED: "set_quantity()",
}


def get_metric(metric: Metric | str, *, kind: Metric.Kind) -> Metric:
    """Return the active metric of ``kind`` named by ``metric`` (a key or a Metric)."""
    if isinstance(metric, Metric):
        found = metric
    elif isinstance(metric, str):
        try:
            found = Metric.objects.get(key=metric)
        except Metric.DoesNotExist:
            raise UnknownMetric(
                f"No metric with key {metric!r}. Create it first (admin, data migration or "
                f"Metric.objects.create(key={metric!r}, kind=...))."
            ) from None
    else:
        raise UnknownMetric(
            f"metric must be a Metric or its key, got {type(metric).__name__} {metric!r}."
        )
    if not found.active:
        raise UnknownMetric(
            f"Metric {found.key!r} is inactive, so nothing is recorded for it; reactivate it "
            "in the admin to record usage again."
        )
    if found.kind != kind:
        raise WrongMetricKind(
            f"Metric {found.key!r} is {found.kind}: use {KIND_API[Metric.Kind(found.kind)]} "
            f"for it, not {KIND_API[kind]}."
        )
    return found
