"""Fixtures of the fault-injection suite, and the figures it measured, printed after the run.

The delivery tests' fixtures are reused: ``configure`` points the Stripe backend at the fake
Stripe server, ``api_calls`` is a metered sum metric with its meter in the fake; ``broker``
is RabbitMQ with a queue of the test's own, for real Celery workers.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.broker import broker  # noqa: F401 (a fixture)
from tests.delivery.conftest import api_calls, configure  # noqa: F401 (fixtures)

MEASURED = pytest.StashKey[list[str]]()


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Add a line to the "measured" section printed at the end of the run."""
    return request.config.stash.setdefault(MEASURED, []).append


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(MEASURED, [])
    if lines:
        terminalreporter.section("billflow_usage fault suite: measured")
        for line in lines:
            terminalreporter.write_line(line)
