"""Celery delivery as users run it: a real Celery worker (two pool processes) on RabbitMQ,
``deliver_usage`` tasks enqueued by real commits of another process, and a ``billflow_worker``
draining the same PostgreSQL ledger beside it. One Celery pool process is killed with SIGKILL
mid-batch, holding events Stripe accepted and the ledger hasn't marked; its claims expire
(the three-second ``CLAIM_LEASE``) and are redone under the same identifiers (Stripe refuses
the resent ones as duplicates), its task is redelivered (``task_acks_late`` with
``task_reject_on_worker_lost``), and Stripe bills every event exactly once."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.broker import BROKER_URL
from tests.factories import MetricFactory
from tests.faults.exactly_once import assert_billed_exactly_once, ledger_rows
from tests.faults.shared_ledger import LedgerState, SharedLedger, postgres_url

ROOT = Path(__file__).resolve().parents[2]
METRICS = ["api_calls", "exports"]
#: 120 (customer, metric) pairs: a v1 claim never takes a pair another claim holds, so a
#: batch of 40 leaves pairs for the other two processes to claim at the same time.
CUSTOMERS = 60
#: Commits of the producer, each enqueueing one task, and the events each records.
TRANSACTIONS = 30
PER_TRANSACTION = 20
EVENTS = TRANSACTIONS * PER_TRANSACTION
#: Two Celery pool processes and a billflow_worker, each one batch (one claim) at a time.
DELIVERERS = 3
CLAIMED_SQL = (
    f"SELECT claim_token, identifier FROM {UsageEvent._meta.db_table} "
    f"WHERE status = 'pending' AND claim_token IS NOT NULL"
)
#: Per meter event request: Stripe holds a batch's first events while the rest are sent.
LATENCY = 0.1
#: Seconds for the processes to start, and for the whole drain.
PATIENCE = 45.0
SUCCEEDED = re.compile(
    r"Task billflow_usage\.tasks\.deliver_usage\[[^]]+\] succeeded .*'delivered': (\d+)"
)
RECEIVED = re.compile(r"Task billflow_usage\.tasks\.deliver_usage\[[^]]+\] received")
WORKER_DELIVERED = re.compile(r"^\[worker\] \d+ claimed: (\d+) delivered", re.MULTILINE)

#: Transactional: the processes share the test database, so writes must commit.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.wall_clock, pytest.mark.slow]


@pytest.fixture
def shared_ledger() -> SharedLedger:
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: Celery workers and billflow_worker share the ledger with row "
            "locks (SKIP LOCKED); run with DATABASE_URL=postgres://..."
        )
    return SharedLedger(postgres_url(connection.settings_dict))


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check_running(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.popen.args} exited early:\n{self.output()[-3000:]}")

    def stop(self) -> int:
        """SIGTERM (a clean stop for both workers) and the exit code."""
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=PATIENCE)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[str, list[str], dict[str, str]], Process]]:
    """Start a process in a session of its own, output to a file; whatever is left of each
    (a Celery worker's pool included) is killed afterwards."""
    started: list[Process] = []

    def run(name: str, arguments: list[str], env: dict[str, str]) -> Process:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as sink:
            popen = subprocess.Popen(
                [sys.executable, "-m", *arguments],
                env=env,
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(Process(popen, log))
        return started[-1]

    yield run
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait()


def wait_for(what: str, ready: Callable[[], object], *watched: Process) -> object:
    """Poll ``ready`` until it returns something true while the watched processes run."""
    deadline = time.monotonic() + PATIENCE
    while not (found := ready()):
        for process in watched:
            process.check_running()
        if time.monotonic() > deadline:
            logs = "\n".join(f"{p.popen.args}:\n{p.output()[-2000:]}" for p in watched)
            raise AssertionError(f"gave up waiting for {what}:\n{logs}")
        time.sleep(0.05)
    return found


def running_tasks(app: Celery, node: str) -> dict[str, int]:
    """The tasks the worker's pool processes run right now: task ID -> process ID."""
    replies = app.control.inspect(destination=[node], timeout=1.0, limit=1).active() or {}
    return {task["id"]: int(task["worker_pid"]) for task in replies.get(node, [])}


def claims_in_flight(fake: FakeStripe) -> tuple[int, int]:
    """(claims holding rows, those of them holding rows Stripe has accepted): the batches
    under way, and those whose loss leaves Stripe holding events the ledger hasn't marked.
    Stripe is read first, so an event marked in between is not counted as held."""
    accepted = {event["identifier"] for key in METRICS for event in fake.meter_events(key)}
    with connection.cursor() as cursor:
        cursor.execute(CLAIMED_SQL)
        rows = cursor.fetchall()
    holding = {token for token, identifier in rows if identifier in accepted}
    return len({token for token, _ in rows}), len(holding)


def test_celery_workers_and_billflow_worker_drain_a_ledger_exactly_once_through_a_sigkill(
    fake_stripe: FakeStripe,
    shared_ledger: SharedLedger,
    broker: Celery,
    start: Callable[[str, list[str], dict[str, str]], Process],
    report_figure: Callable[[str], None],
) -> None:
    for key in METRICS:
        fake_stripe.create_meter(key)
        MetricFactory(key=key, event_name=key)
    customers = [str(fake_stripe.create_customer()["id"]) for _ in range(CUSTOMERS)]
    fake_stripe.faults.add("latency", latency=LATENCY, route="/v1/billing/meter_events")
    queue = broker.conf.task_default_queue
    node = f"{queue}@localhost"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.faults.celery_settings",
        "DATABASE_URL": shared_ledger.url,
        "FAKE_STRIPE_URL": fake_stripe.url,
        "METER_API": "v1",
        "PYTHONPATH": str(ROOT),
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_QUEUE": queue,
    }
    started = time.monotonic()
    celery = start(
        "celery",
        ["celery", "-A", "tests.faults.celery_app", "worker", "--pool", "prefork",
         "--concurrency", "2", "--queues", queue, "--hostname", node, "--loglevel", "info",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env,
    )  # fmt: skip
    wait_for("the Celery worker", lambda: broker.control.ping([node], timeout=0.5), celery)
    worker = start(
        "billflow_worker",
        ["django", "billflow_worker", "--batch-size", "40", "--idle-sleep", "0.1"],
        env,
    )
    producer = start(
        "producer",
        ["tests.faults.celery_producer", str(TRANSACTIONS), str(PER_TRANSACTION),
         ",".join(METRICS), *customers],
        env,
    )  # fmt: skip

    def delivering_pool_process() -> tuple[int, LedgerState] | None:
        """A pool process running the same task in two looks at the worker, both pool
        processes busy, then every deliverer seen mid-batch with events Stripe accepted and
        the ledger hasn't marked (the moment a lost answer matters): whichever pool process
        dies then leaves such events behind."""
        before = running_tasks(broker, node)
        after = running_tasks(broker, node) if len(before) == 2 else {}
        still = [pid for task, pid in after.items() if before.get(task) == pid]
        state = shared_ledger.state()
        assert state.count("sent") < EVENTS, "drained before a Celery process could be killed"
        if not still:
            return None
        claims, holding = claims_in_flight(fake_stripe)  # last: the kill follows at once
        return (still[0], state) if claims == holding == DELIVERERS else None

    victim, before = wait_for(
        "a Celery pool process mid-batch", delivering_pool_process, celery, worker
    )
    os.kill(victim, signal.SIGKILL)

    def drained() -> bool:
        if producer.popen.poll() not in (None, 0):
            raise AssertionError(f"the producer failed:\n{producer.output()}")
        return producer.popen.poll() == 0 and shared_ledger.state().count("sent") == EVENTS

    wait_for("the drain", drained, celery, worker)
    drained = time.monotonic() - started
    # Every commit's task ran to the end once: the killed one again after its redelivery.
    wait_for("every task", lambda: len(SUCCEEDED.findall(celery.output())) >= TRANSACTIONS, celery)

    assert worker.stop() == 0, worker.output()
    assert celery.stop() == 0, celery.output()
    log = celery.output()
    assert f"pid:{victim} exited with 'signal 9 (SIGKILL)'" in log, log
    assert "WorkerLostError('Worker exited prematurely: signal 9 (SIGKILL)" in log, log
    assert len(SUCCEEDED.findall(log)) == TRANSACTIONS
    assert len(RECEIVED.findall(log)) == TRANSACTIONS + 1, "the killed task is redelivered once"
    fake_stripe.faults.clear()
    state = shared_ledger.state()
    assert (state.claimed, state.failures) == (0, [])
    for key in METRICS:
        metric_rows = ledger_rows(Metric.objects.get(key=key))
        assert_billed_exactly_once(fake_stripe, key, metric_rows)
    requests = fake_stripe.request_count("/v1/billing/meter_events")
    # The proof counts only if Stripe was asked twice: the victim's accepted events, resent.
    assert requests > EVENTS, "nothing was resent: the kill missed the moment that matters"
    by_celery = sum(int(n) for n in SUCCEEDED.findall(log))
    by_worker = sum(int(n) for n in WORKER_DELIVERED.findall(worker.output()))
    report_figure(
        f"Celery (prefork x2, RabbitMQ) + billflow_worker, {EVENTS:,} events in {TRANSACTIONS} "
        f"commits, a pool process SIGKILLed mid-batch at {before.count('sent')} sent, "
        f"{before.claimed} claimed: drained in {drained:.1f} s with {requests} meter event "
        f"requests ({requests - EVENTS} resent, refused as duplicates); marked delivered by "
        f"Celery tasks {by_celery}, by billflow_worker {by_worker}; totals exact"
    )
