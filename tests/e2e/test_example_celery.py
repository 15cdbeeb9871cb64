"""The example project's Celery app, loaded as the example loads it (its own settings, in a
process of its own): Django's startup makes it the current app, so a web process's ``delay()``
goes through its broker; its beat schedule names registered tasks; it has the settings
docs/operations.md recommends."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest
from celery import Celery

from billflow_usage.testing.fake_stripe import FakeStripe
from tests.broker import BROKER_URL
from tests.e2e.example_site import EXAMPLE, ROOT, example_environment, manage

PROBE = """
import json
import django
django.setup()
from celery import current_app
from config import celery_app
celery_app.loader.import_default_modules()
conf = celery_app.conf
print(json.dumps({
    "current": current_app.main,
    "broker": conf.broker_url,
    "queue": conf.task_default_queue,
    "schedule": {
        name: [entry["task"], entry["task"] in celery_app.tasks, entry["schedule"],
               entry.get("kwargs", {})]
        for name, entry in conf.beat_schedule.items()
    },
    "delivery": [conf.task_acks_late, conf.task_reject_on_worker_lost,
                 conf.worker_prefetch_multiplier, conf.task_time_limit],
}))
"""


def probe(**environment: str) -> dict[str, object]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": "sqlite:///:memory:",
        **environment,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=EXAMPLE, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, object] = json.loads(done.stdout)
    return loaded


def test_the_example_loads_its_celery_app_and_schedules_delivery_and_sync() -> None:
    loaded = probe()

    assert loaded["current"] == "config"
    assert loaded["broker"] == "amqp://guest:guest@127.0.0.1:5672//"
    assert loaded["queue"] == "billflow-example"
    assert loaded["schedule"] == {
        "billflow-deliver": [
            "billflow_usage.tasks.deliver_usage",
            True,
            60.0,
            {"time_limit": 50.0},
        ],
        "billflow-sync": ["billflow_usage.tasks.sync_usage", True, 3600.0, {}],
        "billflow-prune": ["billflow_usage.tasks.prune_usage", True, 86400.0, {"older_than": 90}],
    }
    assert loaded["delivery"] == [True, True, 1, 900]


def test_the_broker_queue_and_intervals_come_from_the_environment() -> None:
    loaded = probe(
        CELERY_BROKER_URL="amqp://billing:secret@rabbit:5672/billing",
        CELERY_QUEUE="usage",
        BILLFLOW_DELIVER_EVERY="12",
        BILLFLOW_SYNC_EVERY="600",
    )

    assert (loaded["broker"], loaded["queue"]) == (
        "amqp://billing:secret@rabbit:5672/billing",
        "usage",
    )
    schedule = loaded["schedule"]
    assert isinstance(schedule, dict)
    assert schedule["billflow-deliver"][2:] == [12.0, {"time_limit": 10.0}]
    assert schedule["billflow-sync"][2] == 600.0


#: The example's catalogue in the fake Stripe, three subscribed workspaces, and their traffic:
#: members joining (seats) and API calls (metered), each save its own commit.
SEED = """
import stripe
from django.conf import settings
from saas.models import ApiCall, Member, Workspace
from saas.stripe_catalog import create_catalog, subscribe

url = settings.BILLFLOW_USAGE["STRIPE_API_BASE"]
client = stripe.StripeClient(
    settings.STRIPE_TEST_SECRET_KEY, base_addresses={"api": url, "meter_events": url}
)
catalog = create_catalog(client)
for n in range(3):
    workspace = Workspace.objects.create(name=f"Workspace {n}", email=f"billing@w{n}.test")
    subscribe(client, workspace, catalog)
    for i in range(n + 2):
        Member.objects.create(workspace=workspace, email=f"user{i}@w{n}.test")
    for i in range(10 * (n + 1)):
        ApiCall.objects.create(workspace=workspace, endpoint="/v1/search")
"""
LEDGER = """
SELECT e.customer_id, SUM(e.value), COUNT(*), SUM(e.status = 'sent'), m.event_name
FROM billflow_usage_usageevent e JOIN billflow_usage_metric m ON m.id = e.metric_id
WHERE m.kind = 'metered' GROUP BY e.customer_id, m.event_name
"""
SYNC_REPORTS = "SELECT status, drift_remaining FROM billflow_usage_syncreport"
PATIENCE = 60.0


@pytest.mark.slow
@pytest.mark.wall_clock
def test_the_example_delivers_and_reconciles_on_its_celery_beat_schedule(
    broker: Celery, fake_stripe: FakeStripe, tmp_path: Path
) -> None:
    """The example with ``BILLFLOW_DELIVERY=celery``: its traffic's commits enqueue delivery,
    and a Celery worker running its beat schedule (intervals shortened) delivers and
    reconciles: Stripe's totals equal the ledger's and the sync reports find no drift."""
    database = tmp_path / "example.sqlite3"
    queue = broker.conf.task_default_queue
    env = {
        **example_environment(f"sqlite:///{database}", tmp_path),
        "FAKE_STRIPE_URL": fake_stripe.url,
        "BILLFLOW_DELIVERY": "celery",
        "CELERY_BROKER_URL": BROKER_URL,
        "CELERY_QUEUE": queue,
        "BILLFLOW_DELIVER_EVERY": "1",
        "BILLFLOW_SYNC_EVERY": "2",
    }
    manage(env, "migrate", "--run-syncdb", "--noinput", "--verbosity", "0")
    manage(env, "shell", "-c", SEED)
    log = tmp_path / "celery.log"
    worker_command = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "--beat",
        "--schedule", str(tmp_path / "beat-schedule"), "--concurrency", "1",
        "--hostname", f"{queue}@localhost", "--loglevel", "info",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with log.open("wb") as output:
        worker = subprocess.Popen(
            worker_command, cwd=EXAMPLE, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + PATIENCE
        while not reconciled(database):
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"gave up waiting:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=PATIENCE)

    with closing(sqlite3.connect(database)) as db:
        ledger = db.execute(LEDGER).fetchall()
        reports = db.execute(SYNC_REPORTS).fetchall()
    assert ledger, "the traffic recorded no metered usage"
    for customer, total, rows, sent, event_name in ledger:
        assert sent == rows
        assert fake_stripe.meter_event_total(event_name, customer) == total
    assert reports, "beat ran no billflow_sync"
    assert set(reports) == {("completed", 0)}
    output = log.read_text()
    for entry, task in [("billflow-deliver", "deliver_usage"), ("billflow-sync", "sync_usage")]:
        assert f"Sending due task {entry} (billflow_usage.tasks.{task})" in output, output


def reconciled(database: Path) -> bool:
    """Every row sent, and a sync (only beat runs one here) finished."""
    with closing(sqlite3.connect(database)) as db:
        unsent = db.execute(
            "SELECT COUNT(*) FROM billflow_usage_usageevent WHERE status != 'sent'"
        ).fetchone()[0]
        finished = db.execute(
            "SELECT COUNT(*) FROM billflow_usage_syncreport WHERE status = 'completed'"
        ).fetchone()[0]
    return unsent == 0 and finished > 0
