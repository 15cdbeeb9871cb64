"""The on-commit callbacks Django holds for a transaction: the one place that reads them.

Django keeps them in a private list, ``connection.run_on_commit``, of ``(savepoint ids,
callback, robust)`` entries, and offers no public way to look at it. The library needs three
things from it, each to stay cheap inside the host's transaction:

- the ledger gives every transaction one delivery callback and adds each row it records to
  it (:func:`pending_callback`), rather than registering a callback per row;
- a seat tracker schedules its recount once per transaction, and must know whether a
  savepoint rollback dropped it meanwhile (:func:`is_pending`);
- a tracker's lazy savepoint, rolled back, drops the callbacks registered inside it, as
  leaving an ``atomic()`` block with an exception does (:func:`mark` and
  :func:`drop_since`).

``tests/core/test_commit_hooks.py`` pins this against every Django version CI runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from django.db.backends.base.base import BaseDatabaseWrapper

T = TypeVar("T")


def callbacks(connection: BaseDatabaseWrapper) -> Iterator[Callable[[], Any]]:
    """The callbacks waiting for the current transaction to commit, in order."""
    # django-stubs still types the entries as (savepoint ids, callback) pairs.
    entries: list[tuple[Any, ...]] = connection.run_on_commit
    for _savepoints, callback, _robust in entries:
        yield callback


def pending_callback(connection: BaseDatabaseWrapper, kind: type[T]) -> T | None:
    """The first waiting callback that is a ``kind``; None outside a transaction (there,
    ``on_commit`` runs callbacks at once) or when none waits."""
    if not connection.in_atomic_block:
        return None
    return next((c for c in callbacks(connection) if isinstance(c, kind)), None)


def is_pending(connection: BaseDatabaseWrapper, callback: object) -> bool:
    """Whether ``callback`` still waits for the commit (a rolled-back savepoint drops the
    callbacks registered inside it)."""
    return any(waiting == callback for waiting in callbacks(connection))


def mark(connection: BaseDatabaseWrapper) -> int:
    """A mark to :func:`drop_since`: how many callbacks wait now."""
    return len(connection.run_on_commit)


def drop_since(connection: BaseDatabaseWrapper, position: int) -> None:
    """Drop the callbacks registered since ``position`` (a :func:`mark`), as Django does for
    a savepoint rolled back by ``atomic()``."""
    del connection.run_on_commit[position:]
