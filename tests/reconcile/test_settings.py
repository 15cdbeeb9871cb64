"""The settings billflow_sync adds, their checks, and the rate limiter."""

from __future__ import annotations

from typing import Any

import pytest

from billflow_usage.backends.stripe.reads import RateLimiter
from billflow_usage.checks import check_settings
from billflow_usage.conf import DEFAULTS

BASE = {"BACKEND": "billflow_usage.backends.locmem.LocMemBackend"}


def test_defaults() -> None:
    assert DEFAULTS["SETTLING_WINDOW"] == 3600
    assert DEFAULTS["SYNC_RATE_LIMIT"] == 20
    assert DEFAULTS["DJSTRIPE_MAX_AGE"] == 3600
    assert DEFAULTS["METER_WEBHOOK_SECRET"] is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SETTLING_WINDOW", -1),
        ("SYNC_RATE_LIMIT", "fast"),
        ("DJSTRIPE_MAX_AGE", True),
        ("METER_WEBHOOK_SECRET", "sk_test_wrongkind"),
    ],
)
def test_malformed_values_are_reported(settings: Any, name: str, value: object) -> None:
    settings.BILLFLOW_USAGE = {**BASE, name: value}
    errors = [m for m in check_settings() if m.id == "billflow_usage.E005"]
    assert len(errors) == 1
    assert name in errors[0].msg
    if name == "METER_WEBHOOK_SECRET":
        assert "wrongkind" not in errors[0].msg


def test_rate_limiter_counts_and_spaces_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("billflow_usage.backends.stripe.reads.time.sleep", sleeps.append)
    monkeypatch.setattr("billflow_usage.backends.stripe.reads.time.monotonic", lambda: 100.0)
    limiter = RateLimiter(20)
    for _ in range(3):
        limiter.wait()
    assert limiter.calls == 3
    assert sleeps == pytest.approx([0.05, 0.10])
    unlimited = RateLimiter(0)
    unlimited.wait()
    assert unlimited.calls == 1
