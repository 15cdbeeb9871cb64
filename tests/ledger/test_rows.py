"""Ledger rows written from plain values (the tracked save's INSERT): the same row as from a
model instance, and a column list that follows the model's fields."""

import pytest
from django.db import connection
from django.db.models import Value
from django.utils import timezone

from billflow_usage import ledger, ledger_rows
from billflow_usage.ledger import Usage
from billflow_usage.models import UsageEvent
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

#: What differs between two rows of the same usage.
OWN = {"id", "identifier", "created_at"}


@pytest.fixture
def fresh_inserts():
    """The prepared INSERTs and their field list built again, and again after the test."""
    ledger_rows._inserts.clear()
    ledger_rows._written_fields.cache_clear()
    yield
    ledger_rows._inserts.clear()
    ledger_rows._written_fields.cache_clear()


def row(pk):
    return {k: v for k, v in UsageEvent.objects.filter(pk=pk).values()[0].items() if k not in OWN}


def test_a_row_from_values_is_the_row_an_instance_writes(metric):
    now = timezone.now()
    usage = Usage(metric, "cus_A1", 4, source=OrderFactory())
    from_values = ledger.store_values(
        ledger.event_values(usage, now=now), timestamp_given=False, using="default"
    )
    from_instance = ledger.store_event(ledger.build_event(usage, now=now), timestamp_given=False)

    assert row(from_values) == row(from_instance.pk)
    assert row(from_values)["source_object_id"] != ""


def test_fields_left_out_get_their_defaults(metric):
    pk = ledger.store_values(
        {"metric_id": metric.pk, "customer_id": "cus_A1", "value": 1, "identifier": "o-1"},
        timestamp_given=False,
        using="default",
    )

    event = UsageEvent.objects.get(pk=pk)
    assert (event.status, event.attempts, event.last_error_code) == ("pending", 0, "")
    assert event.created_at is not None
    assert event.next_attempt_at is not None


def test_a_field_only_the_database_fills_is_left_out(monkeypatch, fresh_inserts):
    """A column added with ``db_default`` (and no Python default) is the database's to fill."""
    field = UsageEvent._meta.get_field("last_error_message")
    monkeypatch.setattr(field, "db_default", Value(""))

    sql = ledger_rows._build(connection).sql

    assert '"last_error_message"' not in sql
    assert '"last_error_code"' in sql


def test_only_fields_known_to_need_no_conversion_skip_it(fresh_inserts):
    columns = {c.attname: c for c in ledger_rows._build(connection).columns}

    assert columns["customer_id"].prep is None
    assert columns["value"].prep is None
    assert columns["occurred_at"].prep is not None  # a datetime: SQLite stores text
    assert columns["claim_token"].prep is not None  # a UUID
