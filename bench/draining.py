"""Draining a backlog, shared by the delivery, scale-out and memory benchmarks.

The fake Stripe and every worker run in processes of their own (``python -m
billflow_usage.testing.fake_stripe``, ``python -m django billflow_worker``), so none shares a
GIL with another or with this process, which only records the backlog, watches the ledger and
reads the fake's totals through its ``/_fake/`` endpoints.

A run starts the workers on an empty ledger and waits until they poll, commits the whole
backlog in one transaction, and times from that commit until no event is pending.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billflow_usage.models import DeliveryGroup, Metric, UsageEvent

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "sk_test_bench"
#: How often the ledger is looked at while workers drain it (seconds).
POLL = 0.01


class FakeStripeProcess:
    """The fake Stripe server in a child process, set up through Stripe's API and steered
    through its control endpoints."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "billflow_usage.testing.fake_stripe", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError("the fake Stripe did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def call(self, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        """A control request (JSON) or a Stripe API request (form-encoded, ``/v1/...``)."""
        headers = {"Authorization": f"Bearer {API_KEY}"}
        if path.startswith("/_fake/"):
            body = json.dumps(data).encode() if data is not None else None
        else:
            body = urllib.parse.urlencode(data or {}).encode()
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def create_customers(self, count: int) -> list[str]:
        return [self.call("POST", "/v1/customers")["id"] for _ in range(count)]

    def create_meter(self, event_name: str) -> None:
        self.call(
            "POST",
            "/v1/billing/meters",
            {
                "display_name": event_name,
                "event_name": event_name,
                "default_aggregation[formula]": "sum",
            },
        )

    def set_latency(self, seconds: float) -> None:
        """Every API request waits ``seconds`` before it is handled (0: none)."""
        self.call("DELETE", "/_fake/faults")
        if seconds:
            self.call("POST", "/_fake/faults", {"kind": "latency", "latency": seconds})

    def state(self) -> dict[str, Any]:
        return dict(self.call("GET", "/_fake/state"))


@contextmanager
def fake_stripe() -> Iterator[FakeStripeProcess]:
    """The fake Stripe for a benchmark whose workers share this process's PostgreSQL ledger."""
    if connection.vendor != "postgresql":
        raise RuntimeError(
            "The delivery, scale-out and memory benchmarks run worker processes on one shared "
            "ledger, which needs PostgreSQL: set BENCH_DATABASE_URL=postgres://..."
        )
    fake = FakeStripeProcess()
    try:
        yield fake
    finally:
        fake.stop()


@dataclass
class Totals:
    """What one meter's events came to at the fake Stripe."""

    by_customer: dict[str, int]
    #: Meter events Stripe stored (an aggregated group is one).
    events: int
    #: The most v1 calls one customer had in flight at once on this meter.
    peak_calls_per_customer: int
    #: Events sent again under an identifier Stripe already had (v2 drops them silently),
    #: and meter event requests (v1 events, v2 stream requests and sessions), by route: both
    #: counted since the fake started.
    duplicates: int
    requests: Counter[str]

    def __sub__(self, earlier: Totals) -> Totals:
        """What changed since ``earlier``."""
        return Totals(
            self.by_customer,
            self.events,
            self.peak_calls_per_customer,
            self.duplicates - earlier.duplicates,
            self.requests - earlier.requests,
        )


def meter_totals(fake: FakeStripeProcess, event_name: str) -> Totals:
    state = fake.state()
    rows = [row for row in state["meter_totals"] if row["event_name"] == event_name]
    events = state["events"]
    duplicates = events["duplicate_identifier_rejections"] + events["duplicate_identifiers_ignored"]
    peaks = state["max_concurrency_per_customer_meter"]
    return Totals(
        by_customer={row["customer"]: row["total"] for row in rows},
        events=sum(row["events"] for row in rows),
        peak_calls_per_customer=max(
            (row["max"] for row in peaks if row["event_name"] == event_name), default=0
        ),
        duplicates=duplicates,
        requests=Counter(
            {route: n for route, n in state["requests"]["by_route"].items() if "meter_" in route}
        ),
    )


def new_metric(key: str, fake: FakeStripeProcess) -> Metric:
    """A fresh sum metric with its own meter, so each run's totals stand apart."""
    event_name = key.replace("-", "_")
    fake.create_meter(event_name)
    return Metric.objects.create(key=key, event_name=event_name)


def clear_ledger() -> None:
    """Empty the ledger and let PostgreSQL reclaim and re-plan it, so runs start alike."""
    UsageEvent.objects.all().delete()
    DeliveryGroup.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE billflow_usage_usageevent")


def backlog(
    metric: Metric, customers: list[str], count: int, *, occurred_at: datetime | None = None
) -> Callable[[], None]:
    """What records ``count`` pending events round-robin over ``customers``, committed at
    once (rows are inserted directly: this is setup, not what is measured), with the table's
    statistics brought up to date in the same transaction, as autovacuum keeps them."""

    def record() -> None:
        now = timezone.now()
        rows = (
            UsageEvent(
                metric=metric,
                customer_id=customers[n % len(customers)],
                value=1,
                identifier=f"bench-{metric.key}-{n}",
                occurred_at=occurred_at or now,
                next_attempt_at=now,
            )
            for n in range(count)
        )
        with transaction.atomic():
            UsageEvent.objects.bulk_create(rows, batch_size=5000)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE billflow_usage_usageevent")

    return record


@dataclass(frozen=True)
class Agreement:
    """How the fake Stripe's totals for one metric compare with the ledger's."""

    customers: int
    #: Customers whose total at Stripe equals the ledger's.
    agreeing: int
    #: Events sent again under an identifier Stripe already had.
    duplicates: int
    #: Ledger events not marked sent.
    unsent: int

    @property
    def exact(self) -> bool:
        return self.agreeing == self.customers and not self.duplicates and not self.unsent

    def __str__(self) -> str:
        return (
            f"{self.agreeing:,} of {self.customers:,} customers agree, "
            f"{self.duplicates} duplicate(s), {self.unsent} unsent"
        )


def compare(metric: Metric, totals: Totals) -> Agreement:
    events = UsageEvent.objects.filter(metric=metric)
    ledger = dict(events.values_list("customer_id").annotate(total=Sum("value")))
    return Agreement(
        customers=len(ledger),
        agreeing=sum(
            totals.by_customer.get(customer) == total for customer, total in ledger.items()
        ),
        duplicates=totals.duplicates,
        unsent=events.exclude(status=UsageEvent.Status.SENT).count(),
    )


@dataclass
class Drained:
    """One run: how long the backlog took, and each worker's memory (kB)."""

    seconds: float
    idle_rss: list[int]
    peak_rss: list[int]


class Worker:
    """``billflow_worker`` in a child process, on the benchmark's database."""

    def __init__(self, settings: dict[str, Any], args: list[str]) -> None:
        self.log: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.worker_settings",
            "BENCH_DATABASE_URL": database_url(),
            "BENCH_BILLFLOW_USAGE": json.dumps(settings),
            "PYTHONPATH": str(ROOT),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "django", "billflow_worker", "-v", "2", *args],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_until_polling(self, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while "billflow_worker started" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a worker did not start:\n{self.output()}")
            time.sleep(0.05)
        time.sleep(0.5)  # past its first (empty) claim

    def memory(self, field: str) -> int:
        """``VmRSS`` (now) or ``VmHWM`` (peak so far) of the worker, in kB (Linux)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith(f"{field}:"))
        return int(line.split()[1])

    def stop(self) -> None:
        """SIGTERM: the worker finishes its batch and exits; a failure is reported."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        failed = self.process.wait(timeout=120) != 0
        output = self.output()
        self.log.close()
        if failed:
            raise RuntimeError(f"a worker failed:\n{output}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()


def drain(
    settings: dict[str, Any],
    fill: Callable[[], None],
    *,
    workers: int = 1,
    args: tuple[str, ...] = (),
) -> Drained:
    """Start ``workers`` worker processes (``settings``: their ``BILLFLOW_USAGE`` keys,
    ``args``: their options), commit the backlog with ``fill``, and time until nothing is
    pending."""
    running = [Worker(settings, ["--idle-sleep", "0.05", *args]) for _ in range(workers)]
    try:
        for worker in running:
            worker.wait_until_polling()
        idle = [worker.memory("VmRSS") for worker in running]
        fill()
        started = time.perf_counter()
        pending = UsageEvent.objects.filter(status=UsageEvent.Status.PENDING)
        while pending.exists():
            for worker in running:
                if worker.process.poll() is not None:
                    raise RuntimeError(f"a worker exited early:\n{worker.output()}")
            time.sleep(POLL)
        seconds = time.perf_counter() - started
        peak = [worker.memory("VmHWM") for worker in running]
    finally:
        for worker in running:
            worker.stop()
    return Drained(seconds, idle, peak)


def database_url() -> str:
    """This process's database (the test database the runner created), for the workers."""
    db = connection.settings_dict
    credentials = urllib.parse.quote(db["USER"] or "")
    if db["PASSWORD"]:
        credentials += ":" + urllib.parse.quote(db["PASSWORD"])
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{db['NAME']}"
