"""Counting recorded rows from the ``usage_recorded`` signal, connected only with the
``metrics`` extra installed (see :func:`connect`): without it the recording path is
untouched."""

from __future__ import annotations

from typing import Any

from billflow_usage.models import Metric, UsageEvent
from billflow_usage.observability import recorder
from billflow_usage.signals import usage_recorded

DISPATCH_UID = "billflow_usage.observability.recorded"
#: Metric keys by pk, so counting a row never queries (a key missing here is read once).
_keys: dict[int, str] = {}


def connect() -> None:
    """Count recorded rows, when ``prometheus_client`` is installed."""
    if recorder.enabled():
        usage_recorded.connect(_recorded, sender=UsageEvent, dispatch_uid=DISPATCH_UID)


def _recorded(sender: type[UsageEvent], event: UsageEvent, **kwargs: Any) -> None:
    recorder.usage_recorded(_key(event), event.status)


def _key(event: UsageEvent) -> str:
    if event.metric_id is None:
        return "none"
    if event.metric_id not in _keys:
        if UsageEvent.metric.is_cached(event):
            _keys[event.metric_id] = event.metric.key if event.metric else "none"
        else:
            _keys.update(Metric.objects.values_list("pk", "key"))
    return _keys.get(event.metric_id, "none")
