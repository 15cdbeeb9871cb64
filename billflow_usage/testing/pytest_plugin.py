"""pytest plugin, loaded automatically when billflow-usage is installed.

It only imports the backend module (no models), so it is safe before Django is set up.
"""

from __future__ import annotations

import pytest

from billflow_usage.backends import locmem


@pytest.fixture(autouse=True)
def _billflow_usage_clear_outbox() -> None:
    """Start every test with an empty locmem outbox, like Django's ``mail.outbox``."""
    locmem.outbox.clear()


@pytest.fixture
def usage_outbox() -> list[object]:
    """What the locmem backend would have sent during this test."""
    return locmem.outbox  # type: ignore[return-value]
