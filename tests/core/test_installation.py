"""The installation's namespace: one row made by ``migrate``, read once per process."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from billflow_usage import installation
from billflow_usage.identifiers import derived_identifier
from billflow_usage.models import Installation
from tests.tracking.helpers import rolled_back

pytestmark = pytest.mark.django_db


@pytest.fixture
def forgotten(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's own memory of namespaces, as a process that has read none yet."""
    namespaces: dict[str, str] = {}
    monkeypatch.setattr(installation, "_namespaces", namespaces)
    return namespaces


def test_migrate_made_the_row_and_its_namespace_is_read_without_a_query() -> None:
    row = Installation.objects.get()

    with CaptureQueriesContext(connection) as queries:
        assert installation.namespace("default") == row.namespace

    assert len(row.namespace) == 32
    assert not queries


def test_a_missing_row_is_made_on_first_use_and_kept_once_committed(
    forgotten: dict[str, str], django_capture_on_commit_callbacks
) -> None:
    Installation.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        made = installation.namespace("default")
        assert forgotten == {}  # not before the commit

    assert Installation.objects.get().namespace == made
    assert forgotten == {"default": made}


def test_a_row_made_in_a_rolled_back_transaction_is_not_kept(forgotten: dict[str, str]) -> None:
    Installation.objects.all().delete()

    rolled_back(lambda: installation.namespace("default"))

    assert forgotten == {}
    assert not Installation.objects.exists()


def test_a_copy_gets_its_own_namespace_by_deleting_the_row_and_migrating(
    forgotten: dict[str, str],
) -> None:
    """What the README tells to do on staging restored from production."""
    copied = Installation.objects.get().namespace
    before = derived_identifier("bfx_", ["same content"])

    Installation.objects.all().delete()
    call_command("migrate", verbosity=0)

    assert Installation.objects.get().namespace == forgotten["default"] != copied
    assert derived_identifier("bfx_", ["same content"]) != before


def test_the_row_is_one_row() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Installation.objects.create(id=2)
