"""Under gunicorn with several workers (``PROMETHEUS_MULTIPROC_DIR``), one scrape sees what
every process counted, and only billflow_usage's metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "prometheus_client",
    reason="the metrics extra is not installed: pip install 'billflow-usage[metrics]'",
)

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from billflow_usage.observability.exposition import MULTIPROC_VARIABLE, scrape_registry

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys
from prometheus_client import Counter
from billflow_usage.observability import recorder

count = int(sys.argv[1])
recorder.delivery_result("api_calls", "delivered", count)
recorder.stripe_request("/v1/billing/meter_events", "POST", "200")
recorder.delivery_latency("api_calls", [0.3] * count)
# Another library's metric in the same directory (django-prometheus writes there too).
Counter("django_http_requests", "not ours").inc()
"""


def write(directory: Path, count: int) -> None:
    environment = {
        **os.environ,
        MULTIPROC_VARIABLE: str(directory),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-c", WRITER, str(count)], env=environment, check=True, timeout=60
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_one_scrape_sees_every_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, 2)
    write(tmp_path, 5)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process

    monkeypatch.setenv(MULTIPROC_VARIABLE, str(tmp_path))
    found = samples(generate_latest(scrape_registry(ledger=False)).decode())

    delivered = (("metric", "api_calls"), ("outcome", "delivered"))
    assert found[("billflow_usage_delivery_results_total", delivered)] == 7
    requests = (("endpoint", "/v1/billing/meter_events"), ("method", "POST"), ("status", "200"))
    assert found[("billflow_usage_stripe_requests_total", requests)] == 2
    assert found[("billflow_usage_delivery_latency_seconds_count", (("metric", "api_calls"),))] == 7
    assert not [name for name, _ in found if not name.startswith("billflow_usage_")]


@pytest.mark.django_db
def test_the_view_adds_the_database_gauges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.test import RequestFactory

    from billflow_usage.observability.views import metrics

    write(tmp_path, 1)
    monkeypatch.setenv(MULTIPROC_VARIABLE, str(tmp_path))
    text = metrics(RequestFactory().get("/metrics/")).content.decode()
    found = samples(text)
    delivered = (("metric", "api_calls"), ("outcome", "delivered"))
    assert found[("billflow_usage_delivery_results_total", delivered)] == 1
    assert found[("billflow_usage_ledger_up", ())] == 1
    assert "django_http_requests" not in text
