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
    with pytest.raises(CommandError, match="must be at least 1"):
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


def test_sigterm_stops_the_worker_after_its_current_batch(
    fake_stripe: FakeStripe, tmp_path: Path
) -> None:
    customer = str(fake_stripe.create_customer()["id"])
    fake_stripe.create_meter("api_calls")
    # Slow answers, so the signal arrives while a batch is in flight.
    fake_stripe.faults.add("latency", latency=0.2, route="/v1/billing/meter_events")
    database = tmp_path / "worker.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.delivery.worker_settings",
        "DATABASE_URL": f"sqlite:///{database}",
        "FAKE_STRIPE_URL": fake_stripe.url,
        "PYTHONPATH": str(ROOT),
    }
    subprocess.run(
        [sys.executable, "-c", SETUP.format(customer=customer)], env=env, check=True, cwd=ROOT
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "django", "billflow_worker", "--batch-size", "3", "-v", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT status, claim_token FROM billflow_usage_usageevent").fetchall()
    sent = [row for row in rows if row[0] == "sent"]
    assert len(sent) == fake_stripe.meter_event_total("api_calls", customer) >= 3
    assert all(token is None for _, token in rows)  # the batch in flight was finished and marked
    assert {status for status, _ in rows} <= {"sent", "pending"}


def wait_for(condition: object, process: subprocess.Popen[str], limit: float = 30.0) -> None:
    """Poll until ``condition()`` holds (the subprocess must still be running)."""
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        if process.poll() is not None:
            raise AssertionError(f"worker exited early: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not start delivering")
        time.sleep(0.02)
