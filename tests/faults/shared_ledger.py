"""A ledger database that worker subprocesses and the test process both reach.

On PostgreSQL it is the test database itself (the test must be transactional, so what each
side writes is committed); on SQLite, whose test database lives in this process's memory, a
file of the test's own that the subprocesses create.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.db import connection

from billflow_usage.models import DeliveryGroup, UsageEvent
from tests.faults.exactly_once import LedgerRow

ROWS_SQL = (
    f"SELECT e.customer_id, e.value, e.status, COALESCE(g.identifier, e.identifier), "
    f"e.claim_token IS NOT NULL, e.last_error_code, e.last_error_message "
    f"FROM {UsageEvent._meta.db_table} e "
    f"LEFT JOIN {DeliveryGroup._meta.db_table} g ON g.id = e.group_id"
)


@dataclass(frozen=True)
class LedgerState:
    rows: list[LedgerRow]
    #: Rows a worker has claimed and not yet marked.
    claimed: int
    #: (code, message) of each failed row.
    failures: list[tuple[str, str]]

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)


@dataclass(frozen=True)
class SharedLedger:
    #: ``DATABASE_URL`` for the subprocesses.
    url: str
    #: The SQLite file; None on PostgreSQL, read through this process's connection.
    sqlite_path: Path | None = None

    def state(self) -> LedgerState:
        """The ledger as committed right now."""
        if self.sqlite_path is None:
            with connection.cursor() as cursor:
                cursor.execute(ROWS_SQL)
                fetched = cursor.fetchall()
        else:
            with closing(sqlite3.connect(self.sqlite_path)) as db:
                fetched = db.execute(ROWS_SQL).fetchall()
        return LedgerState(
            rows=[LedgerRow(*row[:4]) for row in fetched],
            claimed=sum(bool(row[4]) for row in fetched),
            failures=[(row[5], row[6]) for row in fetched if row[2] == UsageEvent.Status.FAILED],
        )


def postgres_url(settings: dict[str, Any]) -> str:
    """A ``DATABASE_URL`` for the database of a Django PostgreSQL connection."""
    credentials = quote(settings["USER"] or "", safe="")
    if settings["PASSWORD"]:
        credentials += ":" + quote(settings["PASSWORD"], safe="")
    host = settings["HOST"] or "localhost"
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(settings['NAME'], safe='')}"
