"""The calls that count: each one a no-op without ``prometheus_client``.

Delivery, seat pushes, the Stripe backend's transport and the ``usage_recorded`` receiver
call these with plain values (metric keys, outcomes, codes, HTTP statuses: labels of bounded
cardinality, never a customer). Whether ``prometheus_client`` is installed is asked once per
process; only then is :mod:`~billflow_usage.observability.instruments` (and with it
``prometheus_client``) imported. This module imports nothing of the app, so the backends may
use it.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from billflow_usage.observability.instruments import Instruments

#: The label of a code longer than Prometheus users want in a label (codes are cut here).
MAX_LABEL = 100


@functools.cache
def enabled() -> bool:
    """Whether ``prometheus_client`` is installed (the ``metrics`` extra)."""
    return importlib.util.find_spec("prometheus_client") is not None


def _instruments() -> Instruments | None:
    if not enabled():
        return None
    from billflow_usage.observability.instruments import instruments

    return instruments()


def usage_recorded(metric: str, status: str, count: int = 1) -> None:
    """Rows added to the ledger (``status``: pending, or failed when kept failed)."""
    if (found := _instruments()) is not None:
        found.recorded.labels(metric=metric, status=status).inc(count)


def delivery_result(metric: str, outcome: str, count: int = 1) -> None:
    """Rows marked after a delivery attempt (``outcome``: delivered, retry, failed,
    refused)."""
    if (found := _instruments()) is not None:
        found.results.labels(metric=metric, outcome=outcome).inc(count)


def delivery_latency(metric: str, seconds: Iterable[float]) -> None:
    """Seconds from recording to Stripe's acceptance, one per delivered row."""
    if (found := _instruments()) is not None:
        histogram = found.latency.labels(metric=metric)
        for value in seconds:
            histogram.observe(value)


def delivery_failures(code: str, count: int = 1) -> None:
    """Rows failed permanently, by the error code stored on them."""
    if (found := _instruments()) is not None:
        found.failures.labels(code=code[:MAX_LABEL]).inc(count)


def credential_rejections(kind: str, count: int = 1) -> None:
    """Rows (``kind`` events) or seat pushes (``kind`` seats) whose credentials the sink
    refused."""
    if (found := _instruments()) is not None:
        found.credentials.labels(kind=kind).inc(count)


def seat_push(outcome: str) -> None:
    """One seat quantity push (``outcome``: pushed, retry, failed, refused)."""
    if (found := _instruments()) is not None:
        found.seats.labels(outcome=outcome).inc()


def stripe_request(endpoint: str, method: str, status: str) -> None:
    """One HTTP request to Stripe: ``endpoint`` a path template (IDs replaced), ``status``
    the HTTP status or ``error`` when no answer came."""
    if (found := _instruments()) is not None:
        found.requests.labels(endpoint=endpoint, method=method, status=status).inc()
