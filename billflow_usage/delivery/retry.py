"""Exponential backoff with jitter, between ``RETRY_BASE_DELAY`` and ``RETRY_MAX_DELAY``."""

from __future__ import annotations

import random
from datetime import timedelta

#: 2**64 times any sensible base delay is far past any cap; avoids float overflow.
MAX_EXPONENT = 64


def backoff(
    attempt: int, *, base: float, cap: float, retry_after: float | None = None
) -> timedelta:
    """Delay before attempt ``attempt + 1`` after ``attempt`` failed ones (1-based).

    "Equal jitter": half the exponential delay is fixed and half random, so workers that
    failed together (an outage) don't retry together, yet no retry comes too early. A
    ``Retry-After`` from Stripe is a floor.
    """
    delay = min(cap, base * 2 ** min(max(attempt - 1, 0), MAX_EXPONENT))
    delay = delay / 2 + random.uniform(0, delay / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return timedelta(seconds=delay)
