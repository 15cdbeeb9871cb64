"""Look up the metric a caller names, with errors that say how to fix the name."""

from __future__ import annotations

from billflow_usage.exceptions import UnknownMetric, WrongMetricKind
from billflow_usage.models import Metric
from billflow_usage.redaction import described, excerpt

KIND_API = {
    Metric.Kind.METERED: "record_usage()",
    Metric.Kind.LICENSED: "set_quantity()",
}


def get_metric(metric: Metric | str, *, kind: Metric.Kind) -> Metric:
    """Return the active metric of ``kind`` named by ``metric`` (a key or a Metric)."""
    if isinstance(metric, Metric):
        found = metric
    elif isinstance(metric, str):
        found = _by_key(metric)
    else:
        raise UnknownMetric(f"metric must be a Metric or its key, got {described(metric)}.")
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


def _by_key(key: str) -> Metric:
    """The metric named ``key``; a key no column can hold (a NUL, which PostgreSQL refuses
    in a query) names none, without asking the database."""
    found = None if "\x00" in key else Metric.objects.filter(key=key).first()
    if found is None:
        raise UnknownMetric(
            f"No metric with key {excerpt(key)}. Create it first (admin, data migration or "
            f"Metric.objects.create(key={excerpt(key)}, kind=...))."
        )
    return found
