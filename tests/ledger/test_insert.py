"""How a usage row is written: one INSERT that a repeated identifier turns into a no-op,
without a savepoint, and a database error that is raised rather than swallowed."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import billflow_usage
from billflow_usage import ledger
from billflow_usage.exceptions import IdentifierConflict
from billflow_usage.models import UsageEvent

pytestmark = pytest.mark.django_db

LEDGER_TABLE = UsageEvent._meta.db_table


def statements(captured):
    return [" ".join(q["sql"].split()[:3]) for q in captured]


@pytest.fixture
def without_insert_returning(monkeypatch):
    """The database as MySQL or Oracle: no ``INSERT ... ON CONFLICT ... RETURNING``."""
    monkeypatch.setattr(ledger, "INSERT_RETURNING_VENDORS", ())


@pytest.fixture
def ledger_table_gone():
    """A real database error for every ledger write (undone with the test's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{LEDGER_TABLE}" RENAME TO "bfu_ledger_away"')


def test_a_new_row_costs_one_insert(metric):
    with CaptureQueriesContext(connection) as captured:
        event = billflow_usage.record_usage(metric, "cus_A1", 3)  # a key would cost a SELECT

    assert statements(captured) == [f'INSERT INTO "{LEDGER_TABLE}"']
    assert UsageEvent.objects.get(pk=event.pk).value == 3
    assert not event._state.adding


def test_a_repeated_identifier_costs_one_insert_and_one_select(metric):
    when = timezone.now()
    first = billflow_usage.record_usage("orders", "cus_A1", 2, identifier="o-1", timestamp=when)

    with CaptureQueriesContext(connection) as captured:
        again = billflow_usage.record_usage(metric, "cus_A1", 2, identifier="o-1", timestamp=when)

    assert [s.split()[0] for s in statements(captured)] == ["INSERT", "SELECT"]
    assert again == first
    assert UsageEvent.objects.count() == 1


def test_without_insert_returning_a_savepoint_catches_the_duplicate(
    metric, without_insert_returning
):
    first = billflow_usage.record_usage("orders", "cus_A1", 2, identifier="o-1")

    with transaction.atomic():
        assert billflow_usage.record_usage("orders", "cus_A1", 2, identifier="o-1") == first
        with pytest.raises(IdentifierConflict):
            billflow_usage.record_usage("orders", "cus_A1", 5, identifier="o-1")
        second = billflow_usage.record_usage("orders", "cus_A1", 1, identifier="o-2")

    assert second.pk is not None
    assert list(UsageEvent.objects.order_by("pk").values_list("identifier", "value")) == [
        ("o-1", 2),
        ("o-2", 1),
    ]


def test_a_database_error_is_raised(metric, ledger_table_gone):
    with pytest.raises(DatabaseError), transaction.atomic():
        billflow_usage.record_usage("orders", "cus_A1")
