"""``manage.py billflow_status``: the text, ``--json``, exit codes 0/1/2, option ranges."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import MetricFactory, UsageEventFactory
from tests.ops.conftest import recorded, sync_report

pytestmark = pytest.mark.django_db


def status(*args: str, **options: Any) -> tuple[int, str]:
    """The exit code and what was printed."""
    out = StringIO()
    try:
        call_command("billflow_status", *args, stdout=out, **options)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


@pytest.mark.now("2026-12-01T00:30:00Z")
def test_healthy_exits_0() -> None:
    UsageEventFactory(sent=True)
    code, text = status()
    assert code == 0
    assert "Backlog: 0 pending row(s)" in text
    assert "Last delivery: 2026-12-01T00:30" in text
    assert "Credentials: ok" in text
    assert "Last billflow_sync: none yet" in text
    assert text.rstrip().endswith("Healthy.")


def test_degraded_exits_1_and_says_why() -> None:
    orders = MetricFactory(key="orders")
    recorded(UsageEventFactory(metric=orders), 1000)
    code, text = status()
    assert code == 1
    assert "Backlog: 1 pending row(s), the oldest waiting 10" in text
    assert "  orders: 1" in text
    assert "DEGRADED: The oldest pending row has waited 16 min" in text


def test_broken_exits_2() -> None:
    UsageEventFactory(last_error_code="credentials_rejected")
    code, text = status()
    assert code == 2
    assert "Credentials: credentials_rejected" in text
    assert "BROKEN: Stripe refuses our key" in text


def test_options_override_the_settings(settings) -> None:
    recorded(UsageEventFactory(), 100)
    UsageEventFactory(failed=True)
    assert status()[0] == 1
    assert status("--max-lag", "50", "--max-failed", "1")[0] == 1
    assert status("--max-lag", "150", "--max-failed", "1")[0] == 0
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "STATUS_MAX_FAILED": 1}
    assert status()[0] == 0


def test_unreachable_after_option() -> None:
    recorded(UsageEventFactory(attempts=3, last_error_code="http_503"), 120)
    assert status("--max-lag", "3600", "--unreachable-after", "60")[0] == 2
    assert status("--max-lag", "3600", "--unreachable-after", "600")[0] == 0


def test_json_document() -> None:
    MetricFactory(key="orders")
    recorded(UsageEventFactory(metric__key="calls"), 30)
    UsageEventFactory(failed=True, last_error_code="no_meter")
    sync_report(
        drift_remaining=1, report={"unbilled": [{"metric": "calls", "events": 1, "value": 2}]}
    )
    code, text = status("--json")
    document = json.loads(text)
    assert code == 1
    assert document["status"] == "degraded"
    assert document["exit_code"] == 1
    assert document["backlog"] == 1
    assert document["backlog_by_metric"] == {"calls": 1}
    assert 29 <= document["oldest_pending_age"] <= 32
    assert document["failed_by_code"] == {"no_meter": 1}
    assert document["last_delivery"] is None
    assert document["credentials"] == "ok"
    assert document["last_sync"]["drift_by_metric"] == {"calls": 1}
    assert document["last_sync"]["drift_remaining"] == 1
    assert [p["code"] for p in document["problems"]] == ["failed"]
    assert document["thresholds"] == {"max_lag": 900, "max_failed": 0, "unreachable_after": 1800}


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (("--max-lag", "nan"), {}),
        (("--max-lag", "0"), {}),
        (("--max-failed", "-1"), {}),
        (("--max-failed", "1.5"), {}),
        (("--unreachable-after", "inf"), {}),
        ((), {"max_lag": -5}),
        ((), {"max_failed": True}),
    ],
)
def test_out_of_range_options_are_refused(args: tuple[str, ...], options: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="is not a"):
        call_command("billflow_status", *args, stdout=StringIO(), **options)


def test_an_unreadable_database_is_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import OperationalError

    from billflow_usage.management.commands import billflow_status as command

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(command, "check_health", refuse)
    with pytest.raises(CommandError, match="Cannot read the ledger") as refused:
        call_command("billflow_status", stdout=StringIO())
    assert refused.value.returncode == 2
