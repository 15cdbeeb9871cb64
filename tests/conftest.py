import pytest
from django.db import connection

from billflow_usage.tracking.registry import registry as project_registry
from tests.clock import (
    _suite_clock,  # noqa: F401 - autouse: every test at a fixed instant
    clock,  # noqa: F401 - a test moves the clock forward
)
from tests.factories import LicensedMetricFactory, MetricFactory


@pytest.fixture
def metric(db):
    return MetricFactory(key="orders", event_name="orders")


@pytest.fixture
def seats(db):
    return LicensedMetricFactory(key="seats")


@pytest.fixture
def on_postgresql(db) -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL row locks; run with DATABASE_URL=postgres://... to include it"
        )


@pytest.fixture
def default_registry():
    """The project-wide registry behind ``billflow_usage.track``, emptied for this test."""
    saved = project_registry.get_trackers()
    project_registry.clear()
    yield project_registry
    project_registry.clear()
    for tracker in saved:
        project_registry.register(tracker)
