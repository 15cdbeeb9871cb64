"""``manage.py billflow_worker``: --once in-process, and a clean stop on SIGTERM in a real
subprocess (file-based SQLite, the fake Stripe server in this process)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

import billflow_usage
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def v1(configure: Configure) -> None:
    configure(METER_API="v1")


@pytest.mark.django_db
def test_once_delivers_what_is_due_and_reports_each_batch(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, 1) for _ in range(5)
    )
    out = StringIO()

    call_command("billflow_worker", "--once", "--batch-size", "2", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[:3] == [
        "[worker] 2 claimed: 2 delivered, 0 to retry, 0 failed, 0 released; seats: 0 pushed, "
        "0 to retry, 0 failed",
    ] * 2 + [
        "[worker] 1 claimed: 1 delivered, 0 to retry, 0 failed, 0 released; seats: 0 pushed, "
        "0 to retry, 0 failed"
    ]
    assert lines[3].startswith("billflow_worker stopped: 5 claimed: 5 delivered")
    assert fake_stripe.meter_event_total("api_calls", customer) == 5


@pytest.mark.django_db
def test_verbosity_0_prints_nothing(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    billflow_usage.record_usage("api_calls", customer, 1)
    out = StringIO()

    call_command("billflow_worker", "--once", verbosity=0, stdout=out)

    assert out.getvalue() == ""
    assert UsageEvent.objects.get().status == "sent"


@pytest.mark.django_db
def test_concurrency_needs_row_locks(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str, on_sqlite: None
) -> None:
    out = StringIO()

    call_command("billflow_worker", "--once", "--concurrency", "4", stdout=out)

    assert "gets one thread" in out.getvalue()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(CommandError, match="'0' is not a whole number of events from 1 to"):
        call_command("billflow_worker", "--once", "--batch-size", "0")


@pytest.fixture
def on_sqlite() -> None:
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("checks the SQLite fallback")


SETUP = """
import django
django.setup()
from django.core.management import call_command
from billflow_usage.models import Metric
import billflow_usage
call_command("migrate", run_syncdb=True, verbosity=0)
Metric.objects.create(key="api_calls", event_name="api_calls")
billflow_usage.record_usage_bulk(
    billflow_usage.Usage("api_calls", "{customer}", 1) for _ in range(6)
)
"""


@pytest.fixture
def worker_env(fake_stripe: FakeStripe, tmp_path: Path) -> dict[str, str]:
    """A file SQLite ledger with 6 pending events, for worker subprocesses."""
    customer = str(fake_stripe.create_customer()["id"])
    fake_stripe.create_meter("api_calls")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.delivery.worker_settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        "FAKE_STRIPE_URL": fake_stripe.url,
        "PYTHONPATH": str(ROOT),
        "TEST_CUSTOMER": customer,
    }
    subprocess.run(
        [sys.executable, "-c", SETUP.format(customer=customer)], env=env, check=True, cwd=ROOT
    )
    return env


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "django", "billflow_worker", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ledger_rows(env: dict[str, str]) -> list[tuple[str, str | None]]:
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        return db.execute("SELECT status, claim_token FROM billflow_usage_usageevent").fetchall()


@pytest.mark.wall_clock
def test_sigterm_stops_the_worker_after_its_current_batch(
    fake_stripe: FakeStripe, worker_env: dict[str, str]
) -> None:
    # Slow answers, so the signal arrives while a batch is in flight.
    fake_stripe.faults.add("latency", latency=0.2, route="/v1/billing/meter_events")
    worker = start_worker(worker_env, "--batch-size", "3", "-v", "2")
    try:
        wait_for(lambda: fake_stripe.request_count("/v1/billing/meter_events") >= 1, worker)
        worker.send_signal(signal.SIGTERM)
        stdout, stderr = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert worker.returncode == 0, stderr
    assert "SIGTERM received: stopping after this batch." in stdout
    assert "billflow_worker stopped:" in stdout
    rows = ledger_rows(worker_env)
    sent = [row for row in rows if row[0] == "sent"]
    customer = worker_env["TEST_CUSTOMER"]
    assert len(sent) == fake_stripe.meter_event_total("api_calls", customer) >= 3
    assert all(token is None for _, token in rows)  # the batch in flight was finished and marked
    assert {status for status, _ in rows} <= {"sent", "pending"}


@pytest.mark.wall_clock
def test_a_worker_killed_mid_batch_is_redone_by_another_exactly_once(
    fake_stripe: FakeStripe, worker_env: dict[str, str]
) -> None:
    # Stripe keeps processing what it received while the worker dies before marking it.
    fake_stripe.faults.add("latency", latency=0.2, route="/v1/billing/meter_events")
    killed = start_worker(worker_env, "--batch-size", "6")
    try:
        wait_for(lambda: fake_stripe.request_count("/v1/billing/meter_events") >= 2, killed)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert any(token is not None for _, token in ledger_rows(worker_env)), "died holding a claim"

    # The dead worker's lease runs out; another worker redoes its rows.
    database = worker_env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute("UPDATE billflow_usage_usageevent SET claimed_until = '2000-01-01 00:00:00'")
    fake_stripe.faults.clear()
    again = subprocess.run(
        [sys.executable, "-m", "django", "billflow_worker", "--once", "-v", "0"],
        env=worker_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert again.returncode == 0, again.stderr
    assert {status for status, _ in ledger_rows(worker_env)} == {"sent"}
    customer = worker_env["TEST_CUSTOMER"]
    identifiers = [e["identifier"] for e in fake_stripe.meter_events("api_calls", customer)]
    assert len(identifiers) == len(set(identifiers)) == 6
    assert fake_stripe.meter_event_total("api_calls", customer) == 6


def wait_for(condition: object, process: subprocess.Popen[str], limit: float = 30.0) -> None:
    """Poll until ``condition()`` holds (the subprocess must still be running)."""
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if process.poll() is not None:
            raise AssertionError(f"worker exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not start delivering")
        time.sleep(0.02)
