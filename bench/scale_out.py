"""Scale-out: 1, 2 and 4 worker processes drain one PostgreSQL ledger of 100,000 pending
events over 1,000 customers (``v2``, no added latency, each worker with the delivery
benchmark's 16 requests in flight and one batch at a time): throughput, and exactly-once (the
fake Stripe's total for every customer equals the ledger's, and no event was sent twice).

On the 2-core build machine the workers, PostgreSQL and the fake share two cores, so more
workers mostly show that nothing is lost or doubled, rather than a speed-up.
"""

from __future__ import annotations

from bench.delivery import WORKER_SETTINGS
from bench.draining import (
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
CUSTOMERS = 1_000
WORKERS = (1, 2, 4)


def run() -> list[Figure]:
    figures = []
    rates = {}
    with fake_stripe() as fake:
        customers = fake.create_customers(CUSTOMERS)
        for count in WORKERS:
            clear_ledger()
            metric = new_metric(f"bench-scale-{count}", fake)
            before = meter_totals(fake, metric.event_name)
            drained = drain(
                {**WORKER_SETTINGS, "METER_API": "v2", "STRIPE_API_BASE": fake.url},
                backlog(metric, customers, EVENTS),
                workers=count,
            )
            totals = meter_totals(fake, metric.event_name) - before
            agreement = compare(metric, totals)
            rates[count] = EVENTS / drained.seconds
            label = f"scale-out, {count} worker process{'es' if count > 1 else ''}"
            figures += [
                Figure(f"{label}: events/s", f"{rates[count]:,.0f}"),
                Figure(
                    f"{label}: customers whose Stripe total = ledger",
                    f"{agreement.agreeing:,} of {agreement.customers:,}",
                    "all",
                    agreement.agreeing == agreement.customers,
                ),
                Figure(
                    f"{label}: events sent twice / left unsent",
                    f"{agreement.duplicates} / {agreement.unsent}",
                    "0 / 0",
                    not agreement.duplicates and not agreement.unsent,
                ),
            ]
    figures.append(
        Figure(
            f"scale-out: {WORKERS[-1]} workers / 1 worker", f"{rates[WORKERS[-1]] / rates[1]:.2f}x"
        )
    )
    return figures
