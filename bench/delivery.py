"""Delivery throughput: one worker process drains 100,000 pending events over 1,000 customers
to the fake Stripe (another process) at zero and at 50 ms added latency, in ``v1``, ``v2``
and ``v2`` with aggregation: events per second and Stripe requests per 1,000 events.

The worker runs with 16 Stripe requests in flight (``DELIVERY_CONCURRENCY``) and 4 batches
in flight (``--concurrency``, so database work overlaps sending). ``v1`` sends one request
per event, one at a time per customer and meter: it drains a 10,000-event sample (100,000
would take minutes), and its figures say so. First, the fake's own capacity, measured with a
bare HTTP client, shows it is not what limits delivery.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench.draining import (
    FakeStripeProcess,
    backlog,
    clear_ledger,
    compare,
    drain,
    fake_stripe,
    meter_totals,
    new_metric,
)
from bench.report import Figure

EVENTS = 100_000
V1_EVENTS = 10_000
CUSTOMERS = 1_000
LATENCIES = (0.0, 0.05)
#: Events per second ``v2`` must reach, by added latency.
V2_TARGETS = {0.0: 10_000, 0.05: 5_000}
WINDOW = 3600
#: The worker in every run: 16 Stripe requests and 4 batches in flight.
WORKER_SETTINGS = {"DELIVERY_CONCURRENCY": 16, "BATCH_SIZE": 1000}
WORKER_ARGS = ("--concurrency", "4")
MODES: dict[str, dict[str, Any]] = {
    "v1": {"METER_API": "v1"},
    "v2": {"METER_API": "v2"},
    "v2 + aggregation": {"METER_API": "v2", "AGGREGATION_WINDOW": WINDOW},
}


def run() -> list[Figure]:
    figures = []
    with fake_stripe() as fake:
        customers = fake.create_customers(CUSTOMERS)
        capacity = fake_capacity(fake, customers)
        rates = {}
        for latency in LATENCIES:
            fake.set_latency(latency)
            for mode, settings in MODES.items():
                rate, measured = measure(fake, customers, mode, settings, latency)
                rates[(mode, latency)] = rate
                figures += measured
        fake.set_latency(0)
    best = max(rates.values())
    figures.append(
        Figure(
            "delivery: fake Stripe alone (bare client, v2 stream)",
            f"{capacity:,.0f} ev/s",
            f"> 2 x {best:,.0f}",
            capacity > 2 * best,
        )
    )
    return figures


def measure(
    fake: FakeStripeProcess,
    customers: list[str],
    mode: str,
    settings: dict[str, Any],
    latency: float,
) -> tuple[float, list[Figure]]:
    """One worker drains one backlog; returns events/s and the figures."""
    events = V1_EVENTS if mode == "v1" else EVENTS
    label = f"delivery {mode}, {latency * 1000:.0f} ms"
    if events != EVENTS:
        label += f" ({events:,}-event sample)"
    clear_ledger()
    metric = new_metric(f"bench-{mode.replace(' + ', '-')}-{latency * 1000:.0f}ms", fake)
    aggregated = "AGGREGATION_WINDOW" in settings
    # Aggregation sends closed windows only: the backlog is in the previous hour.
    closed = datetime.fromtimestamp((time.time() // WINDOW - 1) * WINDOW + 1, tz=UTC)
    before = meter_totals(fake, metric.event_name)
    drained = drain(
        {**WORKER_SETTINGS, **settings, "STRIPE_API_BASE": fake.url},
        backlog(metric, customers, events, occurred_at=closed if aggregated else None),
        args=WORKER_ARGS,
    )
    totals = meter_totals(fake, metric.event_name) - before
    agreement = compare(metric, totals)
    if not agreement.exact:
        raise AssertionError(f"{label}: not delivered exactly once: {agreement}")
    rate = events / drained.seconds
    requests = sum(totals.requests.values())
    v2_target = V2_TARGETS.get(latency) if mode == "v2" else None
    figures = [
        Figure(
            f"{label}: events/s",
            f"{rate:,.0f}",
            f">= {v2_target:,}" if v2_target else "",
            rate >= v2_target if v2_target else None,
        ),
        Figure(f"{label}: Stripe requests per 1,000 events", f"{requests * 1000 / events:,.1f}"),
    ]
    if mode == "v1":
        figures.append(
            Figure(
                f"{label}: most calls in flight per customer and meter",
                str(totals.peak_calls_per_customer),
                "1",
                totals.peak_calls_per_customer == 1,
            )
        )
    if aggregated:
        # One window, so at most one Stripe event per customer and metric.
        per_window = totals.events / len(totals.by_customer)
        figures.append(
            Figure(
                f"{label}: Stripe events per customer, metric, window",
                f"{per_window:.2f}",
                "<= 1",
                per_window <= 1,
            )
        )
    return rate, figures


def fake_capacity(
    fake: FakeStripeProcess, customers: list[str], requests: int = 400, threads: int = 4
) -> float:
    """Events per second the fake accepts on the v2 stream from a client that spends nothing
    on encoding: pre-built 100-event bodies, posted over ``threads`` connections."""
    event_name = "bench_capacity"
    fake.create_meter(event_name)
    token = fake.call("POST", "/v2/billing/meter_event_session")["authentication_token"]
    bodies = [_stream_body(event_name, customers) for _ in range(requests)]
    host, port = fake.url.removeprefix("http://").split(":")

    refused: list[int] = []

    def post(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection(host, int(port))
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for body in share:
            connection.request("POST", "/v2/billing/meter_event_stream", body, headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 200:
                refused.append(answer.status)
        connection.close()

    workers = [threading.Thread(target=post, args=(bodies[i::threads],)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if refused:
        raise RuntimeError(f"the fake refused {len(refused)} stream request(s): {refused[:5]}")
    return requests * 100 / elapsed


def _stream_body(event_name: str, customers: list[str]) -> bytes:
    moment = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events = [
        {
            "event_name": event_name,
            "identifier": uuid.uuid4().hex,
            "payload": {"stripe_customer_id": customers[n], "value": "1"},
            "timestamp": moment,
        }
        for n in range(100)
    ]
    return json.dumps({"events": events}).encode()
