"""Settings that would silently do nothing, or worse: a misspelt BILLFLOW_USAGE (the project
then calls the real Stripe instead of its fake), dj-stripe missing from INSTALLED_APPS, and
numbers that are not finite."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from billflow_usage.checks import check_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = {"BACKEND": "billflow_usage.backends.locmem.LocMemBackend"}


@pytest.mark.parametrize(
    "name", ["BILLFLOW_USEAGE", "BILLFLOW_SETTINGS", "BILLFLOW", "BILFLOW_USAGE"]
)
def test_misspelt_settings_dict_warns(settings, name):
    setattr(settings, name, {"STRIPE_API_BASE": "http://127.0.0.1:12111"})
    [message] = check_settings()
    assert message.id == "billflow_usage.W003"
    assert name in message.msg
    assert "Did you mean BILLFLOW_USAGE?" in message.hint


def test_the_real_dict_and_other_apps_settings_do_not_warn(settings):
    settings.BILLFLOW_USAGE = BASE
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_x"
    settings.DJSTRIPE_WEBHOOK_VALIDATION = "retrieve_event"
    settings.BILLING_CYCLE = "monthly"  # another app's setting, not a near miss
    assert check_settings() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SETTLING_WINDOW", float("inf")),
        ("SETTLING_WINDOW", 10**9),
        ("SYNC_RATE_LIMIT", float("nan")),
        ("SYNC_RATE_LIMIT", float("inf")),
        ("SYNC_RATE_LIMIT", -1),
        ("SYNC_RATE_LIMIT", 1e-300),
        ("BATCH_SIZE", 10**9),
        ("CLAIM_LEASE", float("inf")),
        ("RETRY_MAX_DELAY", float("inf")),
        ("AGGREGATION_WINDOW", float("inf")),
        ("DJSTRIPE_MAX_AGE", float("inf")),
    ],
)
def test_numbers_are_finite_and_in_range(settings, name, value):
    settings.BILLFLOW_USAGE = BASE | {name: value}
    [message] = check_settings()
    assert message.id == "billflow_usage.E005"
    assert name in message.msg


@pytest.mark.parametrize("command", [["check"], ["billflow_sync", "--dry-run"]])
def test_dj_stripe_missing_from_installed_apps_stops_the_project(command):
    """Before, `check` was silent and billflow_sync crashed later; now both stop on E009."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.security.settings_without_djstripe",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": "sqlite:///:memory:",  # never a real database, even on regression
    }
    done = subprocess.run(
        [sys.executable, "-m", "django", *command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "billflow_usage.E009" in done.stderr
    assert "Add 'djstripe' to INSTALLED_APPS" in done.stderr
    assert "Traceback" not in done.stderr
