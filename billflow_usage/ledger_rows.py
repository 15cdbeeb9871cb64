"""Ledger rows written as one ``INSERT ... ON CONFLICT (identifier) DO NOTHING RETURNING id``
from plain values, without a model instance: the tracked save's one extra statement.

What doesn't change between rows is worked out once per database vendor: the statement, the
column list (the model's concrete fields, so a field added later with a ``default`` is filled
as a model instance would fill it, and one with only a ``db_default`` is left to the
database) and the database value of every constant default. A row then costs a list of its
values, converted only where the database needs it (datetimes, on SQLite).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone

from billflow_usage.models import UsageEvent

#: Field classes whose Python values reach the database driver as they are (exactly these:
#: a subclass may convert its values, so it goes through ``get_db_prep_save``).
PLAIN_FIELDS = frozenset(
    {
        models.CharField,
        models.TextField,
        models.IntegerField,
        models.BigIntegerField,
        models.PositiveIntegerField,
        models.BooleanField,
        models.ForeignKey,
    }
)


@dataclass(frozen=True)
class _Column:
    attname: str
    #: A Python value to its database value; None when the driver takes it as it is.
    prep: Callable[[Any], Any] | None
    #: The database value of a row that gives none.
    default: Callable[[], Any]


@dataclass(frozen=True)
class RowInsert:
    """The prepared INSERT of one database vendor."""

    sql: str
    columns: tuple[_Column, ...]

    def params(self, values: Mapping[str, Any]) -> list[Any]:
        """The statement's parameters for a row given as ``{attname: Python value}``."""
        params = []
        for column in self.columns:
            if column.attname in values:
                value = values[column.attname]
                params.append(value if column.prep is None else column.prep(value))
            else:
                params.append(column.default())
        return params


def insert_row(values: Mapping[str, Any], connection: BaseDatabaseWrapper) -> int | None:
    """Insert one ledger row; its id, or None when a row with its identifier exists."""
    insert = _inserts.get(connection.vendor)
    if insert is None:
        insert = _inserts[connection.vendor] = _build(connection)
    with connection.cursor() as cursor:
        cursor.execute(insert.sql, insert.params(values))
        inserted = cursor.fetchone()
    return None if inserted is None else int(inserted[0])


def row_values(event: UsageEvent) -> dict[str, Any]:
    """An unsaved model instance's values, for :func:`insert_row` (``auto_now_add`` set as
    ``save()`` sets it)."""
    return {field.attname: field.pre_save(event, True) for field in _written_fields()}


#: The INSERT of each database vendor, built on first use.
_inserts: dict[str, RowInsert] = {}


@functools.cache
def _written_fields() -> tuple[models.Field[Any, Any], ...]:
    """Every concrete field but the id and those only the database fills (``db_default``)."""
    fields = []
    for field in UsageEvent._meta.concrete_fields:
        db_only = field.db_default is not NOT_PROVIDED and not field.has_default()
        if not field.primary_key and not db_only:
            fields.append(field)
    return tuple(fields)


def _build(connection: BaseDatabaseWrapper) -> RowInsert:
    quote = connection.ops.quote_name
    meta = UsageEvent._meta
    fields = _written_fields()

    def column(field: models.Field[Any, Any]) -> str:
        return quote(cast(str, field.column))  # set on every concrete field

    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(column(f) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({column(meta.get_field('identifier'))}) DO NOTHING "
        f"RETURNING {column(meta.pk)}"
    )
    return RowInsert(sql, tuple(_column(field, connection) for field in fields))


def _column(field: models.Field[Any, Any], connection: BaseDatabaseWrapper) -> _Column:
    def prep(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    plain = type(field) in PLAIN_FIELDS
    return _Column(field.attname, None if plain else prep, _default(field, prep))


def _default(field: models.Field[Any, Any], prep: Callable[[Any], Any]) -> Callable[[], Any]:
    """What a model instance would store for a field left out: ``auto_now(_add)`` and
    callable defaults per row, anything else computed once."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda: prep(timezone.now())
    if field.has_default() and callable(field.default):
        return lambda: prep(field.get_default())
    constant = prep(field.get_default())
    return lambda: constant
