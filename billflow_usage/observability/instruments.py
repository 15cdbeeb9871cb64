"""The counters and the histogram, made once per process in a registry of their own.

Imported only when ``prometheus_client`` is installed (see
:mod:`~billflow_usage.observability.recorder`). Their own registry keeps them off
``prometheus_client``'s global one, so a project's ``/metrics`` (django-prometheus) shows
them only where the project asks (``docs/operations.md``). Under
``PROMETHEUS_MULTIPROC_DIR`` prometheus_client writes every value to that directory, where
the view reads every process's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

#: Every metric's name starts with it; the view exports nothing else.
PREFIX = "billflow_usage_"
#: Recorded -> accepted by Stripe: the on_commit attempt (well under a second) up to a day
#: of outage.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400)


@dataclass(frozen=True)
class Instruments:
    registry: CollectorRegistry
    recorded: Counter
    results: Counter
    latency: Histogram
    failures: Counter
    credentials: Counter
    seats: Counter
    requests: Counter


@functools.cache
def instruments() -> Instruments:
    """This process's instruments (made on first use)."""
    registry = CollectorRegistry()
    return Instruments(
        registry=registry,
        recorded=Counter(
            f"{PREFIX}events_recorded",
            "Usage rows added to the ledger, by metric and the status they were kept with.",
            ["metric", "status"],
            registry=registry,
        ),
        results=Counter(
            f"{PREFIX}delivery_results",
            "Usage rows marked after a delivery attempt, by metric and outcome "
            "(delivered, retry, failed, refused).",
            ["metric", "outcome"],
            registry=registry,
        ),
        latency=Histogram(
            f"{PREFIX}delivery_latency_seconds",
            "Seconds from recording a usage row to Stripe accepting it.",
            ["metric"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        failures=Counter(
            f"{PREFIX}delivery_failures",
            "Usage rows failed permanently, by error code.",
            ["code"],
            registry=registry,
        ),
        credentials=Counter(
            f"{PREFIX}credential_rejections",
            "Usage rows (events) and seat pushes (seats) whose credentials Stripe refused "
            "(401/403).",
            ["kind"],
            registry=registry,
        ),
        seats=Counter(
            f"{PREFIX}seat_pushes",
            "Seat quantity pushes, by outcome (pushed, retry, failed, refused).",
            ["outcome"],
            registry=registry,
        ),
        requests=Counter(
            f"{PREFIX}stripe_requests",
            "HTTP requests to Stripe, by endpoint (IDs replaced), method and HTTP status "
            "(error: no answer).",
            ["endpoint", "method", "status"],
            registry=registry,
        ),
    )
