"""Without the ``metrics`` extra nothing of prometheus_client is imported, no receiver is
connected, and every recording call returns at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
sys.modules["prometheus_client"] = None  # as if the extra were not installed

import django
django.setup()

from django.test import RequestFactory

import billflow_usage.admin
import billflow_usage.backends.stripe
import billflow_usage.delivery.engine
from billflow_usage.observability import receivers, recorder, views
from billflow_usage.signals import usage_recorded

assert recorder.enabled() is False
recorder.delivery_result("api_calls", "delivered", 3)
recorder.delivery_latency("api_calls", [1.0])
recorder.stripe_request("/v1/billing/meter_events", "POST", "200")
recorder.seat_push("pushed")
assert not [r for r in usage_recorded.receivers if r[0][0] == receivers.DISPATCH_UID]
assert views.metrics(RequestFactory().get("/metrics/")).status_code == 501
loaded = sorted(m for m in sys.modules if m.startswith("billflow_usage.observability"))
assert loaded == [
    "billflow_usage.observability",
    "billflow_usage.observability.receivers",
    "billflow_usage.observability.recorder",
    "billflow_usage.observability.views",
], loaded
assert sys.modules["prometheus_client"] is None
print("ok")
"""


def test_nothing_is_imported_without_prometheus_client() -> None:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
