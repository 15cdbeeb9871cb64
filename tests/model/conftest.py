"""What the model-based test explored, printed after the run."""

from __future__ import annotations

from collections import Counter

import pytest

EXPLORED = pytest.StashKey[Counter[str]]()


@pytest.fixture
def explored(request: pytest.FixtureRequest) -> Counter[str]:
    return request.config.stash.setdefault(EXPLORED, Counter())


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    counts = config.stash.get(EXPLORED, None)
    if counts:
        terminalreporter.section("billflow_usage model-based test: explored")
        terminalreporter.write_line(
            f"{counts['examples']} examples, {counts['steps']} steps, "
            f"{counts['quiescent checks']} quiescent checks "
            f"(every example ends with one), {counts['stripe requests']} Stripe requests"
        )
