"""``guarded()``: run a tracker's own code so that its failure never breaks the host's save.

A tracker runs inside the host's transaction, and its resolvers are user code. A savepoint
around them keeps a failed statement from aborting the host's whole transaction (PostgreSQL)
and undoes the tracker's own writes, but a savepoint costs two statements, on every save,
even though most resolvers only read attributes of the instance. So the savepoint is opened
lazily, just before the first SQL statement the guarded code runs: code that runs none costs
nothing, and code that does is protected exactly as if it had been wrapped from the start.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from billflow_usage import commit_hooks

T = TypeVar("T")

#: Set while a guard opens its savepoint, so the SAVEPOINT statement itself (which passes
#: through every installed guard) makes no other guard open one out of order.
_opening: ContextVar[bool] = ContextVar("billflow_usage_opening_savepoint", default=False)


def guarded(using: str, work: Callable[[], T], on_error: Callable[[Exception], None]) -> T | None:
    """Return what ``work()`` returns; if it raises, undo what it did and hand the exception to
    ``on_error`` (and return None) instead of raising it into the host's save.

    Outside a transaction the work gets one of its own, so its writes still stand or fall
    together; PostgreSQL only begins it at the first statement, so work without SQL costs
    nothing there.
    """
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        try:
            with transaction.atomic(using=using):
                return work()
        except Exception as exc:
            on_error(exc)
            return None
    savepoint = LazySavepoint(connection)
    try:
        with connection.execute_wrapper(savepoint):
            result = work()
    except Exception as exc:
        savepoint.roll_back()
        on_error(exc)
        return None
    savepoint.release()
    return result


class LazySavepoint:
    """A savepoint opened just before the first statement run while it is installed as an
    execute wrapper (Django's hook around every query of a connection).

    Rolling back does what leaving an ``atomic()`` block with an exception does: back to the
    savepoint, the on-commit callbacks registered since dropped, and the transaction's
    rollback flag (set by a failed ``save()``) cleared again, since the state it marked as
    broken is gone.
    """

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection
        self.ran_sql = False
        self.sid: str | None = None
        self._needs_rollback = connection.needs_rollback
        self._callbacks = commit_hooks.mark(connection)

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: dict[str, Any],
    ) -> Any:
        if not self.ran_sql and not _opening.get():
            self.ran_sql = True
            token = _opening.set(True)
            try:
                self.sid = transaction.savepoint(using=self.connection.alias)
            finally:
                _opening.reset(token)
        return execute(sql, params, many, context)

    def release(self) -> None:
        if self.sid is not None:
            transaction.savepoint_commit(self.sid, using=self.connection.alias)

    def roll_back(self) -> None:
        using = self.connection.alias
        if self.ran_sql and self.sid is None:
            return  # the database can't undo it: the transaction stays marked as it is
        # Clear the rollback flag a failed statement or save() set (Django refuses to run
        # even the ROLLBACK TO SAVEPOINT under it), then undo what the database kept.
        transaction.set_rollback(self._needs_rollback, using=using)
        if self.sid is not None:
            transaction.savepoint_rollback(self.sid, using=using)
            transaction.savepoint_commit(self.sid, using=using)
        commit_hooks.drop_since(self.connection, self._callbacks)
