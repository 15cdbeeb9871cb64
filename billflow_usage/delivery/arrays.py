"""Filtering a batch's rows by a list of values with one query parameter.

``field__in`` sends one placeholder per value, and building and parsing them costs Django and
psycopg more than PostgreSQL's own work on a thousand-row batch. On PostgreSQL
``field = ANY(%s)`` passes the values as one array (still an index lookup, planned with the
actual values); elsewhere ``field__in`` is used.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, F, Func, Q, Value
from django.db.models.sql.compiler import SQLCompiler


class _EqualsAny(Func):
    """``<lhs> = ANY(<array>)``, usable in ``filter()``."""

    output_field = BooleanField()

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, tuple[Any, ...]]:
        lhs, rhs = (compiler.compile(expression) for expression in self.get_source_expressions())
        return f"{lhs[0]} = ANY({rhs[0]})", (*lhs[1], *rhs[1])


def one_of(field: str, values: Collection[Any], using: str) -> Q:
    """Rows whose ``field`` is one of ``values``."""
    if connections[using].vendor == "postgresql":
        return Q(_EqualsAny(F(field), Value(list(values))))
    return Q(**{f"{field}__in": list(values)})
