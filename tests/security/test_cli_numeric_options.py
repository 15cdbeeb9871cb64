"""Every numeric option of billflow_worker and billflow_sync takes only finite numbers within
its range (0 meaning "off" only where the option says so), on the command line and through
``call_command``; the refusal names the option, the value and the accepted range."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from billflow_usage.models import SyncReport

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db

REFUSED = [
    # The four: a busy loop, an OverflowError, a crash, throttling switched off.
    ("billflow_worker", "--idle-sleep", "nan", "from 0.01 to 3600"),
    ("billflow_worker", "--idle-sleep", "inf", "from 0.01 to 3600"),
    ("billflow_sync", "--settling-window", "nan", "from 0 to 3024000"),
    ("billflow_sync", "--rate-limit", "-1", "or 0 for no limit"),
    # And the rest of each range.
    ("billflow_worker", "--idle-sleep", "0", "from 0.01 to 3600"),
    ("billflow_worker", "--idle-sleep", "-inf", "from 0.01 to 3600"),
    ("billflow_worker", "--idle-sleep", "1e309", "from 0.01 to 3600"),
    ("billflow_worker", "--batch-size", "0", "from 1 to 10000"),
    ("billflow_worker", "--batch-size", "10001", "from 1 to 10000"),
    ("billflow_worker", "--batch-size", "2.5", "from 1 to 10000"),
    ("billflow_worker", "--concurrency", "0", "from 1 to 64"),
    ("billflow_worker", "--concurrency", "1000000", "from 1 to 64"),
    ("billflow_sync", "--settling-window", "-5", "from 0 to 3024000"),
    ("billflow_sync", "--settling-window", "inf", "from 0 to 3024000"),
    ("billflow_sync", "--rate-limit", "nan", "or 0 for no limit"),
    ("billflow_sync", "--rate-limit", "inf", "or 0 for no limit"),
    ("billflow_sync", "--rate-limit", "1e-300", "or 0 for no limit"),
    ("billflow_sync", "--rate-limit", "fast", "or 0 for no limit"),
]


def run(command: str, *args: str, **options: object) -> str:
    out = StringIO()
    extra = ["--once"] if command == "billflow_worker" else ["--dry-run"]
    call_command(command, *extra, *args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


@pytest.mark.parametrize(("command", "option", "value", "accepted"), REFUSED)
def test_call_command_refuses_out_of_range_values(command, option, value, accepted):
    with pytest.raises(CommandError) as refused:
        run(command, f"{option}={value}")  # "=": argparse would read "-inf" as an option
    message = str(refused.value)
    assert option in message
    assert repr(value) in message
    assert accepted in message
    assert not SyncReport.objects.exists()  # refused before anything ran or was stored


@pytest.mark.parametrize(
    ("command", "option", "value", "accepted"),
    [
        ("billflow_worker", "idle_sleep", float("nan"), "from 0.01 to 3600"),
        ("billflow_worker", "batch_size", -3, "from 1 to 10000"),
        ("billflow_worker", "concurrency", True, "from 1 to 64"),
        ("billflow_sync", "settling_window", float("inf"), "from 0 to 3024000"),
        ("billflow_sync", "rate_limit", -1.0, "or 0 for no limit"),
    ],
)
def test_values_given_as_keywords_are_checked_too(command, option, value, accepted):
    """call_command(name, option=value) never goes through argparse's types."""
    with pytest.raises(CommandError) as refused:
        run(command, **{option: value})
    message = str(refused.value)
    assert f"--{option.replace('_', '-')}" in message
    assert accepted in message
    assert not SyncReport.objects.exists()


def test_documented_off_values_and_range_ends_are_accepted(settings):
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "SYNC_RATE_LIMIT": 0}
    run("billflow_worker", "--idle-sleep", "0.01", "--batch-size", "10000", "--concurrency", "64")
    run("billflow_worker", "--idle-sleep", "3600", "--batch-size", "1")
    run("billflow_sync", "--rate-limit", "0", "--settling-window", "0")
    run("billflow_sync", "--rate-limit", "1000", "--settling-window", "3024000")
    run("billflow_sync", rate_limit=0.5, settling_window=60)
    assert SyncReport.objects.count() == 3


@pytest.mark.parametrize(
    ("command", "option", "value", "accepted"),
    [REFUSED[0], REFUSED[3]],
    ids=["worker-idle-sleep-nan", "sync-rate-limit-negative"],
)
def test_the_real_command_line_exits_2_with_the_reason(command, option, value, accepted):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": "sqlite:///:memory:",  # never a real database, even on regression
    }
    extra = ["--once"] if command == "billflow_worker" else ["--dry-run"]
    done = subprocess.run(
        [sys.executable, "-m", "django", command, *extra, option, value],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"argument {option}: {value!r} is not" in done.stderr
    assert accepted in done.stderr
