"""Stripe down for a simulated hour while the application keeps recording.

Requests keep saving (a tracked order and an explicit ``record_usage`` in one transaction, as
a view under ``ATOMIC_REQUESTS`` would): no Stripe request is made inside the saving
transaction, and the delivery attempted after commit fails without reaching the request. A
worker keeps retrying within ``RETRY_MAX_DELAY``, and with the library's default retry
settings no row gives up within the hour. Once Stripe is back, the first request's delivery
goes through and makes every row that waited out the outage due at once: everything recorded
is billed exactly once, within a minute of recovery.

Time is simulated with time-machine: the application's clock and the fake Stripe's (it runs
in this process and its clock reads ``time.time()``) jump together from one moment something
happens to the next. Save latencies are measured on the real clock and reported, not asserted.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

import billflow_usage
from billflow_usage.backends import get_backend
from billflow_usage.backends.base import BaseBackend
from billflow_usage.conf import DEFAULTS
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.tracking import metric_cache
from billflow_usage.tracking.registry import TrackerRegistry
from tests.delivery.conftest import Configure
from tests.factories import MetricFactory, WorkspaceFactory
from tests.faults.exactly_once import assert_billed_exactly_once, ledger_rows
from tests.testapp.models import Order, Workspace

#: Transactional, so that on_commit delivery really runs after each request commits.
pytestmark = pytest.mark.django_db(transaction=True)

OUTAGE = 3600
#: Simulated seconds between two requests, before and during the outage.
REQUEST_EVERY = 60
REQUESTS_BEFORE = 60
#: Simulated seconds a worker sleeps when nothing is due (billflow_worker's --idle-sleep).
IDLE_SLEEP = 1
WORKSPACES = 5
PENDING = UsageEvent.Status.PENDING
RETRY_SETTINGS = ("MAX_ATTEMPTS", "RETRY_BASE_DELAY", "RETRY_MAX_DELAY")


@dataclass
class Latencies:
    """Seconds per request, on the real clock."""

    #: From the start of the transaction to just before its commit: the saves.
    saving: list[float] = field(default_factory=list)
    #: The whole request: the saves, the commit and the delivery attempted after it.
    request: list[float] = field(default_factory=list)


def median_p99(samples: list[float]) -> str:
    p99 = statistics.quantiles(samples, n=100)[98]
    return f"median {statistics.median(samples) * 1000:.1f} ms / p99 {p99 * 1000:.1f} ms"


@pytest.fixture
def order_tracker(default_registry: TrackerRegistry) -> Iterator[None]:
    """Orders record their quantity as usage of the "orders" metric."""
    billflow_usage.track(
        Order,
        metric="orders",
        customer=lambda order: order.workspace.stripe_customer_id,
        value=lambda order: order.quantity,
    )
    yield
    metric_cache.clear()  # its metrics are flushed with the rest of this test's rows


@pytest.fixture
def workspaces(fake_stripe: FakeStripe, api_calls: Metric) -> list[Workspace]:
    fake_stripe.create_meter("orders")
    MetricFactory(key="orders", event_name="orders")
    return [
        WorkspaceFactory(stripe_customer_id=fake_stripe.create_customer()["id"])
        for _ in range(WORKSPACES)
    ]


@pytest.fixture
def backend(fake_stripe: FakeStripe) -> Iterator[BaseBackend]:
    """The simulated worker's backend, kept for its life as billflow_worker does."""
    backend = get_backend()
    yield backend
    backend.close()


def handle_request(fake: FakeStripe, workspace: Workspace, n: int, latencies: Latencies) -> None:
    """What a view does: save an order (tracked) and record an API call, in one transaction.

    Returning at all means a failed delivery after commit never reached the request.
    """
    started = time.perf_counter()
    requests_before = fake.request_count()
    with transaction.atomic():
        Order.objects.create(workspace=workspace, quantity=n % 4 + 1)
        billflow_usage.record_usage("api_calls", workspace.stripe_customer_id)
        assert fake.request_count() == requests_before, "Stripe was called while saving"
        latencies.saving.append(time.perf_counter() - started)
    latencies.request.append(time.perf_counter() - started)
    assert fake.request_count() > requests_before, "no delivery was attempted after commit"


class SimulatedWorker:
    """A ``billflow_worker`` waking every ``IDLE_SLEEP`` simulated seconds; time jumps from
    one wake-up with something due to the next, so an idle minute costs nothing."""

    def __init__(self, clock: time_machine.Traveller, backend: BaseBackend) -> None:
        self.clock = clock
        self.backend = backend
        self.start = timezone.now()
        self.elapsed = 0

    def move_to(self, elapsed: int) -> None:
        self.clock.move_to(self.start + timedelta(seconds=elapsed))
        self.elapsed = elapsed

    def next_due(self) -> int | None:
        """When the worker next wakes up to a due row (seconds since the start), if ever."""
        due = UsageEvent.objects.filter(status=PENDING).aggregate(Min("next_attempt_at"))
        if due["next_attempt_at__min"] is None:
            return None
        seconds = (due["next_attempt_at__min"] - self.start).total_seconds()
        return max(self.elapsed + IDLE_SLEEP, math.ceil(seconds / IDLE_SLEEP) * IDLE_SLEEP)

    def poll(self) -> None:
        """One batch, as each turn of the worker's loop; retries never wait past the cap."""
        deliver_pending(backend=self.backend, max_batches=1)
        cap = timezone.now() + timedelta(seconds=DEFAULTS["RETRY_MAX_DELAY"])
        assert not UsageEvent.objects.filter(status=PENDING, next_attempt_at__gt=cap)


def record_through_the_outage(
    fake: FakeStripe, worker: SimulatedWorker, workspaces: list[Workspace], latencies: Latencies
) -> int | None:
    """A request every ``REQUEST_EVERY`` seconds for an hour while the worker keeps trying;
    returns when (seconds into the outage) the first row gave up, if one did."""
    gave_up = UsageEvent.objects.filter(status=UsageEvent.Status.FAILED)
    first_gave_up = None
    requests = iter(range(REQUEST_EVERY, OUTAGE + 1, REQUEST_EVERY))
    next_request = next(requests, None)
    while moments := [m for m in (next_request, worker.next_due()) if m is not None]:
        if min(moments) > OUTAGE:
            break
        worker.move_to(min(moments))
        if worker.elapsed == next_request:
            handle_request(fake, workspaces[next_request % WORKSPACES], next_request, latencies)
            next_request = next(requests, None)
        worker.poll()
        if first_gave_up is None and gave_up.exists():
            first_gave_up = worker.elapsed
    return first_gave_up


def assert_only_exhausted_rows_gave_up(max_attempts: int) -> None:
    gave_up = UsageEvent.objects.filter(status=UsageEvent.Status.FAILED)
    assert set(gave_up.values_list("attempts", flat=True)) <= {max_attempts}
    assert all(
        message.startswith(f"Gave up after {max_attempts} attempts (MAX_ATTEMPTS)")
        for message in gave_up.values_list("last_error_message", flat=True)
    )
    assert not UsageEvent.objects.filter(status=PENDING, attempts__gte=max_attempts)


def drain(worker: SimulatedWorker) -> None:
    """Let the worker run until nothing is pending."""
    while (due := worker.next_due()) is not None:
        worker.move_to(due)
        worker.poll()


@pytest.mark.slow
@pytest.mark.usefixtures("order_tracker")
def test_an_hour_long_outage_never_blocks_saving_and_loses_nothing(
    fake_stripe: FakeStripe,
    configure: Configure,
    backend: BaseBackend,
    workspaces: list[Workspace],
    report_figure: Callable[[str], None],
) -> None:
    # The library's defaults for delivery and retries; only the fake Stripe is configured.
    configure(**{name: DEFAULTS[name] for name in RETRY_SETTINGS}, DELIVERY="on_commit")
    max_attempts = DEFAULTS["MAX_ATTEMPTS"]
    up, down = Latencies(), Latencies()

    with time_machine.travel(timezone.now(), tick=False) as clock:
        worker = SimulatedWorker(clock, backend)
        for n in range(REQUESTS_BEFORE):
            handle_request(fake_stripe, workspaces[n % WORKSPACES], n, up)
        assert set(UsageEvent.objects.values_list("status", flat=True)) == {"sent"}  # on commit

        fake_stripe.faults.add("outage")
        first_gave_up = record_through_the_outage(fake_stripe, worker, workspaces, down)
        unsent = UsageEvent.objects.exclude(status=UsageEvent.Status.SENT)
        recorded_during = unsent.count()
        assert recorded_during == 2 * len(down.request)
        assert set(unsent.values_list("last_error_code", flat=True)) == {"api_connection_error"}
        assert_only_exhausted_rows_gave_up(max_attempts)
        gave_up = unsent.filter(status=UsageEvent.Status.FAILED).count()

        fake_stripe.faults.clear()
        worker.move_to(OUTAGE + REQUEST_EVERY)
        handle_request(fake_stripe, workspaces[0], 0, up)  # the first request after recovery
        drain(worker)
        waited = worker.elapsed - OUTAGE

    assert gave_up == 0, f"retries ran out {first_gave_up} s into an hour-long outage"
    assert waited <= REQUEST_EVERY + IDLE_SLEEP, "waiting rows were not retried on recovery"
    for metric in Metric.objects.all():
        assert_billed_exactly_once(fake_stripe, metric.event_name, ledger_rows(metric))
    report_figure(
        f"Stripe down 1 h, default settings: saving {median_p99(up.saving)} with Stripe up, "
        f"{median_p99(down.saving)} while down; the whole request (commit and on_commit "
        f"attempt included) {median_p99(up.request)} up, {median_p99(down.request)} down"
    )
    report_figure(
        f"  {len(down.request)} requests during the outage recorded {recorded_during} rows; "
        f"none gave up ({max_attempts} attempts allowed); all were delivered "
        f"{waited} simulated s after recovery, once the first request went through; "
        "totals exact"
    )
