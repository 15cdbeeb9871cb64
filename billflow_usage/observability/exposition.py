"""What one scrape exports: this package's counters (this process's, or with
``PROMETHEUS_MULTIPROC_DIR`` every process's) and the database gauges, nothing else."""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from billflow_usage.observability.collector import LedgerCollector
from billflow_usage.observability.instruments import PREFIX, instruments

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class _Ours:
    """Only the ``billflow_usage_`` families of a collector (the multiprocess directory
    holds every library's values, django-prometheus's included)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            if family.name.startswith(PREFIX):
                yield family


def scrape_registry(*, ledger: bool = True) -> CollectorRegistry:
    """A registry for one scrape; ``ledger``: with the database gauges."""
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROC_VARIABLE)
    if directory:
        files = CollectorRegistry()
        MultiProcessCollector(files, path=directory)  # type: ignore[no-untyped-call]
        registry.register(_Ours(files))
    else:
        registry.register(instruments().registry)
    if ledger:
        registry.register(LedgerCollector())
    return registry


def render() -> tuple[bytes, str]:
    """The exposition text and its content type."""
    return generate_latest(scrape_registry()), CONTENT_TYPE_LATEST
