"""The suite's clock: every test runs at a fixed instant, never on today's date.

Usage is billed per calendar month and per billing period, so a test that reads the real
clock passes or fails by the day it runs on (events placed "30 hours ago" fall into the
previous month on the 1st and 2nd). Every test therefore starts at :data:`DEFAULT_NOW`, or
at the instant ``BILLFLOW_TEST_NOW`` names (ISO 8601), with the clock ticking from there
(time-machine; monotonic clocks, sleeps and timeouts are untouched). CI runs the suite again
at a month boundary and at a year boundary (:data:`BOUNDARIES`) to prove no test depends on
where in the calendar it runs.

A test whose subject is a place in the calendar (a month's first hour, a year's end) names
its instant with ``@pytest.mark.now("2026-12-01T00:30:00Z")``; ``BILLFLOW_TEST_NOW`` does not
move it. Tests marked ``wall_clock`` keep the real clock: they share the ledger with subprocesses
(workers, the fake Stripe's command line, the browser), which can't be moved in time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

ENVIRONMENT_VARIABLE = "BILLFLOW_TEST_NOW"
#: Mid-month, mid-day: a period or a day around it has room on both sides.
DEFAULT_NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
#: The instants CI also runs the suite at (see .ci/run).
BOUNDARIES = {
    "month": "2026-12-01T00:30:00+00:00",
    "year": "2027-01-01T00:00:30+00:00",
}


def suite_now() -> datetime:
    """The instant every test starts at, unless it names its own."""
    value = os.environ.get(ENVIRONMENT_VARIABLE)
    return instant(value, ENVIRONMENT_VARIABLE) if value else DEFAULT_NOW


def instant(value: str, origin: str) -> datetime:
    """An ISO 8601 instant (UTC when it names no offset)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise pytest.UsageError(
            f"{origin}={value!r} is not an ISO 8601 instant such as {BOUNDARIES['month']!r}."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _suite_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("wall_clock"):
        yield
        return
    chosen = request.node.get_closest_marker("now")
    start = instant(chosen.args[0], "pytest.mark.now") if chosen else suite_now()
    with time_machine.travel(start, tick=True):
        yield


class Clock:
    """Moves the suite's clock forward within a test (for example past ``billflow_sync``'s
    settling window, after delivering usage); it ticks on from there."""

    def __init__(self) -> None:
        self.travels: list[time_machine.travel] = []

    def advance(self, seconds: float) -> None:
        travel = time_machine.travel(datetime.now(UTC) + timedelta(seconds=seconds), tick=True)
        travel.start()
        self.travels.append(travel)


@pytest.fixture
def clock() -> Iterator[Clock]:
    moved = Clock()
    yield moved
    for travel in reversed(moved.travels):
        travel.stop()
