"""Django's private on-commit list, read only through ``billflow_usage.commit_hooks``: pinned
here against the installed Django (CI runs every supported version)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from billflow_usage import commit_hooks

pytestmark = pytest.mark.django_db


class Flush:
    def __call__(self) -> None:
        pass


def noop() -> None:
    pass


def test_entries_are_what_the_module_reads() -> None:
    with transaction.atomic():
        transaction.on_commit(noop, robust=True)
        [entry] = connection.run_on_commit
        _savepoints, callback, robust = entry  # Django's shape: three items
        assert (callback, robust) == (noop, True)
        assert list(commit_hooks.callbacks(connection)) == [noop]


def test_the_pending_callback_of_a_kind_and_none_outside_a_transaction() -> None:
    flush = Flush()
    assert commit_hooks.pending_callback(connection, Flush) is None
    with transaction.atomic():
        transaction.on_commit(noop)
        transaction.on_commit(flush)
        assert commit_hooks.pending_callback(connection, Flush) is flush
        assert commit_hooks.is_pending(connection, flush)


def test_a_rolled_back_savepoint_drops_its_callbacks_and_so_does_drop_since() -> None:
    flush = Flush()
    with transaction.atomic():
        try:
            with transaction.atomic():
                transaction.on_commit(flush)
                raise RuntimeError
        except RuntimeError:
            pass
        assert not commit_hooks.is_pending(connection, flush)

        position = commit_hooks.mark(connection)
        transaction.on_commit(flush)
        transaction.on_commit(noop)
        commit_hooks.drop_since(connection, position)
        assert list(commit_hooks.callbacks(connection)) == []
