"""One worker draining pending events to the fake Stripe: one by one (v1) vs batched (v2)."""

from __future__ import annotations

import time

import billflow_usage
from bench.report import Figure
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe


def run(events: int = 10_000, customers: int = 100) -> list[Figure]:
    figures = []
    rates = {}
    with FakeStripe() as fake:
        for meter_api in ("v1", "v2"):
            fake.reset()
            ids = [fake.create_customer()["id"] for _ in range(customers)]
            fake.create_meter("bench_calls")
            Metric.objects.get_or_create(key="bench-calls", defaults={"event_name": "bench_calls"})
            UsageEvent.objects.all().delete()
            billflow_usage.record_usage_bulk(
                billflow_usage.Usage("bench-calls", ids[i % customers], 1) for i in range(events)
            )
            backend = StripeBackend(api_key="sk_test_bench", api_base=fake.url, meter_api=meter_api)
            started = time.perf_counter()
            stats = deliver_pending(backend=backend, batch_size=1000)
            elapsed = time.perf_counter() - started
            backend.close()
            delivered = sum(fake.meter_event_total("bench_calls", c) for c in ids)
            assert stats.delivered == delivered == events, (stats, delivered)
            requests = fake.request_count("/v1/billing/meter_events") + fake.request_count(
                "/v2/billing/meter_event_stream"
            )
            rates[meter_api] = events / elapsed
            figures += [
                Figure(f"delivery {meter_api}: events/s", f"{events / elapsed:,.0f}"),
                Figure(
                    f"delivery {meter_api}: Stripe requests per 1,000 events",
                    f"{requests * 1000 / events:,.0f}",
                ),
            ]
    figures.append(Figure("delivery: v2 / v1 throughput", f"{rates['v2'] / rates['v1']:.1f}x"))
    return figures
