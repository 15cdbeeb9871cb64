"""``billflow_sync`` over 2,000 customers x 2 metrics (one metered, one seats) against the fake
Stripe: wall time, and the Stripe requests it makes, by kind.

The run is a nightly check that finds everything in step: customers, prices and subscriptions
are made directly in the fake, Stripe's meter events sent through the v2 stream (100 a
request), and the ledger, workspaces, members and subscription item links written with
``bulk_create``. Requests are not rate limited (``SYNC_RATE_LIMIT`` 0), so the time is the
library's and the fake's own.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

import billflow_usage
from bench.benchapp.models import Member, Workspace
from bench.report import Figure
from bench.seats import active_members, stripe_settings
from billflow_usage.backends.base import MeterEvent
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe

SEATS_METRIC = "bench-members"
SUMMARIES = "GET /v1/billing/meters/{id}/event_summaries"
#: Subscriptions start this long ago, so there is settled usage in the current period.
PERIOD_AGE = timedelta(days=3)
EVENTS_PER_CUSTOMER = 3
MAX_SEATS = 5


def run(customers: int = 2_000) -> list[Figure]:
    with FakeStripe() as fake:
        overrides = {
            **stripe_settings(fake),
            "DELIVERY": "worker",
            "SYNC_RATE_LIMIT": 0,
            "SETTLING_WINDOW": 3600,
            "DJSTRIPE_MAX_AGE": None,
        }
        with override_settings(BILLFLOW_USAGE=overrides):
            metrics = _build(fake, customers)
            tracker = billflow_usage.track_quantity(
                Member,
                metric=SEATS_METRIC,
                customer=lambda member: member.workspace.stripe_customer_id,
                quantity=active_members,
            )
            before = len(fake.request_log)
            out = io.StringIO()
            started = time.perf_counter()
            try:
                call_command("billflow_sync", "--json", stdout=out)
            finally:
                billflow_usage.tracking.untrack(tracker)
            elapsed = time.perf_counter() - started
        requests = Counter(f"{r.method} {r.route}" for r in fake.request_log[before:])
    summary = json.loads(out.getvalue())["summary"]
    pairs = customers * len(metrics)
    assert summary["metered_in_sync"] == customers, summary
    assert summary["seats_checked"] == customers, summary
    assert summary["drift_remaining"] == 0, summary
    summaries = requests[SUMMARIES]
    per_pair = summaries / customers  # one metered metric: one pair per customer
    return [
        Figure(
            f"reconciliation: {customers:,} customers x {len(metrics)} metrics (wall)",
            f"{elapsed:.1f} s",
        ),
        Figure("reconciliation: customer-metrics per second", f"{pairs / elapsed:,.0f}"),
        Figure("reconciliation: Stripe requests", f"{requests.total():,}"),
        *(Figure(f"  {kind}", f"{n:,}") for kind, n in sorted(requests.items())),
        Figure(
            "reconciliation: summaries per customer and metric",
            f"{per_pair:.2f}",
            "<= 1",
            per_pair <= 1,
        ),
    ]


def _build(fake: FakeStripe, customers: int) -> list[Metric]:
    """Stripe, the ledger and the seats, in step: returns the two metrics."""
    meter = fake.create_meter("bench_api_calls", formula="sum")
    metered_price = str(fake.create_price(meter=meter["id"])["id"])
    seat_price = str(fake.create_price()["id"])
    api_calls = Metric.objects.create(
        key="bench-api-calls", event_name="bench_api_calls", stripe_meter_id=meter["id"]
    )
    members = Metric.objects.create(
        key=SEATS_METRIC, kind=Metric.Kind.LICENSED, stripe_price_id=seat_price
    )
    ids = [str(fake.create_customer()["id"]) for _ in range(customers)]
    seats = {customer: 1 + index % MAX_SEATS for index, customer in enumerate(ids)}
    fake.clock.set(time.time() - PERIOD_AGE.total_seconds())
    try:
        subscriptions = [
            (metric, fake.create_subscription(customer, price, quantity))
            for customer in ids
            for metric, price, quantity in (
                (api_calls, metered_price, None),
                (members, seat_price, seats[customer]),
            )
        ]
    finally:
        fake.clock.reset()
    SubscriptionItemLink.objects.bulk_create(
        (_link(metric, subscription) for metric, subscription in subscriptions), batch_size=1000
    )
    workspaces = Workspace.objects.bulk_create(Workspace(stripe_customer_id=c) for c in ids)
    Member.objects.bulk_create(
        (Member(workspace=w) for w in workspaces for _ in range(seats[w.stripe_customer_id])),
        batch_size=1000,
    )
    _record_delivered_usage(fake, api_calls, ids)
    return [api_calls, members]


def _link(metric: Metric, subscription: dict[str, Any]) -> SubscriptionItemLink:
    """The link an earlier billflow_sync made, with the quantity Stripe confirmed."""
    item = subscription["items"]["data"][0]
    return SubscriptionItemLink(
        customer_id=subscription["customer"],
        metric=metric,
        stripe_subscription_id=subscription["id"],
        stripe_subscription_item_id=item["id"],
        quantity=item.get("quantity"),
        synced_quantity=item.get("quantity"),
        current_period_start=datetime.fromtimestamp(item["current_period_start"], UTC),
        current_period_end=datetime.fromtimestamp(item["current_period_end"], UTC),
    )


def _record_delivered_usage(fake: FakeStripe, metric: Metric, customers: list[str]) -> None:
    """Sent ledger rows, and the same events in Stripe."""
    now = timezone.now()
    rows, events = [], []
    for index, customer in enumerate(customers):
        for number in range(EVENTS_PER_CUSTOMER):
            identifier = f"bfu_{uuid.uuid4().hex}"
            value = 1 + (index + number) % 7
            at = now - timedelta(days=1, seconds=index * EVENTS_PER_CUSTOMER + number)
            rows.append(
                UsageEvent(
                    metric=metric,
                    customer_id=customer,
                    value=value,
                    occurred_at=at,
                    identifier=identifier,
                    status=UsageEvent.Status.SENT,
                    sent_at=now,
                )
            )
            events.append(MeterEvent(identifier, metric.event_name, customer, value, at))
    UsageEvent.objects.bulk_create(rows, batch_size=1000)
    backend = StripeBackend(api_key="sk_test_bench", api_base=fake.url, meter_api="v2")
    try:
        backend.send_meter_events(events)
    finally:
        backend.close()
