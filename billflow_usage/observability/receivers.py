"""Counting recorded rows from the ``usage_recorded`` signal, connected only with the
``metrics`` extra installed (see :func:`connect`): without it the recording path is
untouched."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from billflow_usage.models import Metric, UsageEvent
from billflow_usage.observability import recorder
from billflow_usage.signals import usage_recorded

DISPATCH_UID = "billflow_usage.observability.recorded"
#: Metric keys by pk, so counting a row rarely queries (read again when missing, and after
#: a metric changes in this process; another process's rename shows after a restart).
_keys: dict[int, str] = {}


def connect() -> None:
    """Count recorded rows, when ``prometheus_client`` is installed."""
    if recorder.enabled():
        usage_recorded.connect(_recorded, sender=UsageEvent, dispatch_uid=DISPATCH_UID)
        for signal in (post_save, post_delete):
            signal.connect(_forget_keys, sender=Metric, dispatch_uid=f"{DISPATCH_UID}.keys")


def _forget_keys(sender: type[Metric], **kwargs: Any) -> None:
    """A metric added, renamed or deleted in this process: read the keys again."""
    _keys.clear()


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
