import itertools

import pytest

from billflow_usage.tracking import base, metric_cache
from billflow_usage.tracking.registry import TrackerRegistry
from tests.delivery.conftest import api_calls, configure, customer  # noqa: F401 (fixtures)
from tests.factories import LicensedMetricFactory, MetricFactory, WorkspaceFactory


@pytest.fixture(autouse=True)
def _fresh_metric_cache():
    """Metric rows are rolled back between tests; the per-process cache must forget them."""
    metric_cache.clear()
    yield
    metric_cache.clear()


@pytest.fixture
def serials(monkeypatch):
    """Changes numbered "serial-1", "serial-2"... in the order the registry sees them, so a
    test can name the identifier a change gets."""
    counter = itertools.count(1)
    monkeypatch.setattr(base, "new_serial", lambda: f"serial-{next(counter)}")


@pytest.fixture
def tracker_registry():
    """A registry of this test's own, disconnected afterwards (auditlog's pattern)."""
    registry = TrackerRegistry()
    yield registry
    registry.clear()


@pytest.fixture
def orders(db):
    return MetricFactory(key="orders")


@pytest.fixture
def units(db):
    return MetricFactory(key="units")


@pytest.fixture
def seats(db):
    return LicensedMetricFactory(key="seats")


@pytest.fixture
def workspace(db):
    return WorkspaceFactory()
