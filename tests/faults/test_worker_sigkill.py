"""A ``billflow_worker`` process killed with SIGKILL three times mid-drain and restarted each
time still bills every event exactly once: the dead workers' claims expire (after the
one-second ``CLAIM_LEASE`` of the worker settings) and are redone under the same identifiers,
which Stripe deduplicates: a resent request with the same idempotency key replays Stripe's
stored answer, and a resent identifier is refused as already accepted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import stripe
from django.db import connection

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.faults.exactly_once import assert_billed_exactly_once
from tests.faults.shared_ledger import LedgerState, SharedLedger, postgres_url

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 1000
CUSTOMERS = 6
KILLS = 3
#: Events per batch (five batches at least: each worker marks one, then dies in the next), and
#: latency per meter event request, so that Stripe holds events of a batch for a while before
#: the worker marks them sent (v1 sends one request per event, six customers in parallel; v2
#: one request per 100 events).
BATCH = {"v1": 60, "v2": 200}
LATENCY = {"v1": 0.02, "v2": 0.2}
EVENT_ROUTES = {"v1": "/v1/billing/meter_events", "v2": "/v2/billing/meter_event_stream"}
#: Seconds a worker may take to start and make progress, or to finish the drain.
PATIENCE = 60.0


#: Transactional: on PostgreSQL the workers share the test database, so writes must commit.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.wall_clock]


@pytest.fixture
def shared_ledger(tmp_path: Path) -> SharedLedger:
    if connection.vendor == "postgresql":
        return SharedLedger(postgres_url(connection.settings_dict))
    if connection.vendor == "sqlite":
        path = tmp_path / "ledger.sqlite3"
        return SharedLedger(f"sqlite:///{path}", path)
    pytest.skip(f"worker subprocesses can't share a {connection.vendor} ledger in this suite")


@pytest.fixture
def start_worker() -> Iterator[Callable[[dict[str, str]], subprocess.Popen[str]]]:
    """Start ``billflow_worker`` subprocesses; any still running after the test are killed."""
    started: list[subprocess.Popen[str]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[str]:
        batch = str(BATCH[env["METER_API"]])
        command = ["billflow_worker", "--batch-size", batch, "--idle-sleep", "0.1"]
        worker = subprocess.Popen(
            [sys.executable, "-m", "django", *command, "-v", "0"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()


def wait_until(
    ledger: SharedLedger, worker: subprocess.Popen[str], done: Callable[[LedgerState], bool]
) -> LedgerState:
    """Poll the ledger until ``done`` holds while ``worker`` runs; return that state."""
    deadline = time.monotonic() + PATIENCE
    while not done(state := ledger.state()):
        if worker.poll() is not None:
            raise AssertionError(f"the worker exited early: {worker.communicate()}")
        if time.monotonic() > deadline:
            statuses = Counter(row.status for row in state.rows)
            raise AssertionError(
                f"gave up waiting: {statuses}, {state.claimed} claimed, failed: {state.failures}"
            )
        time.sleep(0.01)
    return state


def stop(worker: subprocess.Popen[str], sig: signal.Signals) -> str:
    """Send ``sig`` and wait for the worker to exit; returns its stderr."""
    worker.send_signal(sig)
    _, stderr = worker.communicate(timeout=PATIENCE)
    return stderr


@pytest.mark.slow
@pytest.mark.parametrize("meter_api", ["v1", "v2"])
def test_a_worker_killed_three_times_mid_drain_bills_each_event_once(
    fake_stripe: FakeStripe,
    shared_ledger: SharedLedger,
    start_worker: Callable[[dict[str, str]], subprocess.Popen[str]],
    report_figure: Callable[[str], None],
    meter_api: str,
) -> None:
    fake_stripe.create_meter("api_calls")
    customers = [str(fake_stripe.create_customer()["id"]) for _ in range(CUSTOMERS)]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.faults.worker_settings",
        "DATABASE_URL": shared_ledger.url,
        "FAKE_STRIPE_URL": fake_stripe.url,
        "METER_API": meter_api,
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, "-m", "tests.faults.seed_ledger", "api_calls", str(EVENTS), *customers],
        env=env,
        cwd=ROOT,
        check=True,
    )
    fake_stripe.faults.add("latency", latency=LATENCY[meter_api], route=EVENT_ROUTES[meter_api])
    started = time.monotonic()
    unmarked_at_death = []

    def stripe_holds_unmarked_events(state: LedgerState) -> int:
        """Events Stripe accepted that the ledger doesn't mark sent yet."""
        return len(fake_stripe.meter_events("api_calls")) - state.count("sent")

    for _ in range(KILLS):
        sent_before = shared_ledger.state().count("sent")
        worker = start_worker(env)
        # Mid-batch, the moment a lost answer matters: this worker has marked a batch (so it
        # finished redoing its predecessor's), and Stripe holds events it hasn't marked yet.
        wait_until(
            shared_ledger,
            worker,
            lambda state, floor=sent_before: (
                state.count("sent") > floor
                and stripe_holds_unmarked_events(state) > 0
                and state.count("pending") > 0
            ),
        )
        stderr = stop(worker, signal.SIGKILL)
        assert worker.returncode == -signal.SIGKILL, stderr
        unmarked_at_death.append(stripe_holds_unmarked_events(shared_ledger.state()))

    worker = start_worker(env)
    wait_until(shared_ledger, worker, lambda state: state.count("sent") == EVENTS)
    stderr = stop(worker, signal.SIGTERM)

    assert worker.returncode == 0, stderr
    assert any(unmarked_at_death), "no worker died with events Stripe held but it hadn't marked"
    fake_stripe.faults.clear()
    assert_billed_exactly_once(fake_stripe, "api_calls", shared_ledger.state().rows)
    requests = fake_stripe.request_count(EVENT_ROUTES[meter_api])
    report_figure(
        f"SIGKILL x{KILLS}, {meter_api}, {EVENTS:,} events on {connection.vendor}: events "
        f"Stripe held unmarked at each death {unmarked_at_death}; {requests} meter event "
        f"requests (a run without kills needs {EVENTS if meter_api == 'v1' else EVENTS // 100}); "
        f"drained in "
        f"{time.monotonic() - started:.1f} s; totals exact"
    )


def test_a_request_cut_off_mid_body_is_not_handled(fake_stripe: FakeStripe) -> None:
    """A worker killed while writing a request leaves nothing at Stripe (which never handles
    an incomplete request), so the redo under the same idempotency key is its first use."""
    fake_stripe.create_meter("api_calls")
    customer = str(fake_stripe.create_customer()["id"])
    params = {"event_name": "api_calls", "identifier": "ev1"}
    payload = {"stripe_customer_id": customer, "value": "1"}
    body = urlencode({**params, **{f"payload[{k}]": v for k, v in payload.items()}})
    head = (
        "POST /v1/billing/meter_events HTTP/1.1\r\nHost: stripe\r\n"
        "Authorization: Bearer sk_test_killed\r\nIdempotency-Key: bfu-me-ev1-0\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((fake_stripe.host, fake_stripe.port)) as sock:
        sock.sendall((head + body[: len(body) // 2]).encode())
        sock.shutdown(socket.SHUT_WR)  # the sender dies mid-body
        assert sock.recv(1024) == b""  # hung up on, unanswered

    client = stripe.StripeClient(
        "sk_test_redo", base_addresses={"api": fake_stripe.url}, max_network_retries=0
    )
    client.v1.billing.meter_events.create(
        {**params, "payload": payload},  # type: ignore[typeddict-item]
        {"idempotency_key": "bfu-me-ev1-0"},
    )

    assert [record.status for record in fake_stripe.request_log] == [200]
    assert fake_stripe.meter_event_total("api_calls", customer) == 1
