"""Gauges read from the database when Prometheus scrapes: the ledger's state is in the
database, not in any one process, so every process would report the same (and a process
that just started, nothing). The figures are :mod:`billflow_usage.services.health`'s, read
with its few cheap queries once per scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily, Metric

from billflow_usage.observability.instruments import PREFIX
from billflow_usage.services.health import Figures, Thresholds, assess, read_figures

logger = logging.getLogger("billflow_usage.observability")


class LedgerCollector:
    """Backlog, oldest pending age, failed rows, last delivery, credentials, last sync's
    drift and the health verdict, as ``billflow_status`` sees them."""

    def describe(self) -> list[Metric]:
        # Registering must not query the database (prometheus_client calls describe()).
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            f"{PREFIX}ledger_up", "1 when the ledger could be read for this scrape, else 0."
        )
        try:
            figures = read_figures()
        except DatabaseError:
            logger.exception("billflow_usage metrics: could not read the ledger")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _families(figures)


def _families(figures: Figures) -> Iterator[Metric]:
    backlog = GaugeMetricFamily(
        f"{PREFIX}backlog_events", "Pending usage rows, by metric.", labels=["metric"]
    )
    for metric, count in figures.backlog_by_metric.items():
        backlog.add_metric([metric], count)
    yield backlog
    oldest = GaugeMetricFamily(
        f"{PREFIX}oldest_pending_age_seconds",
        "Seconds the oldest pending usage row of each metric has waited since recorded.",
        labels=["metric"],
    )
    for metric, age in figures.oldest_pending_by_metric.items():
        oldest.add_metric([metric], age)
    yield oldest
    failed = GaugeMetricFamily(
        f"{PREFIX}failed_events", "Failed usage rows, by error code.", labels=["code"]
    )
    for code, count in figures.failed_by_code.items():
        failed.add_metric([code], count)
    yield failed
    if figures.last_delivery is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}last_delivery_timestamp_seconds",
            "When Stripe last accepted a usage row (Unix time).",
            value=figures.last_delivery.timestamp(),
        )
    yield GaugeMetricFamily(
        f"{PREFIX}credentials_rejected",
        "1 while rows or seat pushes wait on credentials Stripe refused, else 0.",
        value=1 if figures.credential_code else 0,
    )
    yield from _sync_families(figures)
    yield GaugeMetricFamily(
        f"{PREFIX}health_status",
        "billflow_status's verdict with the STATUS_* settings: 0 healthy, 1 degraded, 2 broken.",
        value=max((p.state for p in assess(figures, Thresholds.from_settings())), default=0),
    )


def _sync_families(figures: Figures) -> Iterator[Metric]:
    sync = figures.last_sync
    if sync is None:
        return
    drift = GaugeMetricFamily(
        f"{PREFIX}sync_drift",
        "Unrepaired drift entries of the last billflow_sync run, by metric.",
        labels=["metric"],
    )
    for metric, count in sync.drift_by_metric.items():
        drift.add_metric([metric], count)
    yield drift
    if sync.finished_at is not None:
        yield GaugeMetricFamily(
            f"{PREFIX}sync_last_finished_timestamp_seconds",
            "When the last billflow_sync run finished (Unix time).",
            value=sync.finished_at.timestamp(),
        )
