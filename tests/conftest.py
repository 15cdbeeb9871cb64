import pytest
from django.db import connection

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
