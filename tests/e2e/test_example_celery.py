"""The example project's Celery app, loaded as the example loads it (its own settings, in a
process of its own): Django's startup makes it the current app, so a web process's ``delay()``
goes through its broker; its beat schedule names registered tasks; it has the settings
docs/operations.md recommends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.e2e.example_site import EXAMPLE, ROOT

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
