"""The metrics trackers name, cached per process so a tracked save costs no extra query.

An entry lives for :data:`TTL` seconds and is dropped as soon as a ``Metric`` is saved or
deleted in this process, so deactivating a metric in the admin stops its trackers at once
there and within a minute in other processes.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from billflow_usage.exceptions import UnknownMetric
from billflow_usage.metrics import get_metric
from billflow_usage.models import Metric

TTL = 60.0

_cache: dict[tuple[str, str], tuple[Metric, float]] = {}


def tracked_metric(key: str, *, kind: Metric.Kind, using: str) -> Metric | None:
    """The active metric ``key`` of ``kind``; None when it is inactive (trackers then skip).

    Raises UnknownMetric when no metric has the key and WrongMetricKind for the other kind.
    """
    now = time.monotonic()
    cached = _cache.get((using, key))
    if cached is None or cached[1] < now:
        metric = Metric.objects.using(using).filter(key=key).first()
        if metric is None:
            raise UnknownMetric(
                f"No metric with key {key!r}, so the tracker has nothing to record to; create "
                "it (admin or data migration) or fix the tracker's metric."
            )
        cached = (metric, now + TTL)
        _cache[(using, key)] = cached
    metric = cached[0]
    if not metric.active:
        return None
    return get_metric(metric, kind=kind)


def clear() -> None:
    _cache.clear()


@receiver(post_save, sender=Metric, dispatch_uid="billflow_usage.tracking.metric_cache.save")
@receiver(post_delete, sender=Metric, dispatch_uid="billflow_usage.tracking.metric_cache.delete")
def _metric_changed(**kwargs: Any) -> None:
    # A key can be renamed, so forget every entry rather than look for the old one.
    clear()
