"""Backoff: exponential from RETRY_BASE_DELAY, capped at RETRY_MAX_DELAY, jittered, and never
shorter than Stripe's Retry-After."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billflow_usage.delivery.retry import backoff


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 1, 2), (2, 2, 4), (4, 8, 16)])
def test_delay_doubles_per_attempt_with_half_of_it_random(
    attempt: int, low: float, high: float
) -> None:
    delays = {backoff(attempt, base=2, cap=3600) for _ in range(50)}

    assert all(timedelta(seconds=low) <= d <= timedelta(seconds=high) for d in delays)
    assert len(delays) > 1


def test_the_cap_holds_even_for_absurd_attempt_counts() -> None:
    assert backoff(10_000, base=2, cap=60) <= timedelta(seconds=60)


def test_retry_after_is_a_floor() -> None:
    assert backoff(1, base=1, cap=60, retry_after=30) == timedelta(seconds=30)
