"""What a tracked object held when it was loaded or last saved: the old side of a change.

Delta trackers record new minus old, and seat trackers notice an object moving to another
customer, without reading the row again on every save: like django-model-utils' FieldTracker,
the values are kept on the instance when it is built (``post_init``), after each save and
after ``refresh_from_db()``. The database is read only when an old value is unknown: a field
deferred with ``only()``/``defer()``, a value set to an ``F()`` expression, or an instance
built by hand for a row that already exists.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from django.db import models
from django.db.models import ForeignObject

SNAPSHOT_ATTR = "_billflow_usage_loaded"
WATCHED_ATTR = "_billflow_usage_watched"


def _is_expression(value: object) -> bool:
    return hasattr(value, "resolve_expression")


def loaded(instance: models.Model) -> Mapping[str, Any]:
    """Field values (by attname) as loaded or last saved; empty when never taken."""
    snapshot: Mapping[str, Any] = instance.__dict__.get(SNAPSHOT_ATTR, {})
    return snapshot


def take(instance: models.Model, fields: Collection[str] | None = None) -> None:
    """Remember the current values as loaded: all of them, or only ``fields`` (names).

    The snapshot is replaced, never mutated: ``copy.copy(instance)`` shares it.
    """
    concrete: Sequence[models.Field[Any, Any]] = instance._meta.concrete_fields
    snapshot: dict[str, Any] = {}
    if fields is not None:
        concrete = [f for f in concrete if f.name in fields or f.attname in fields]
        snapshot.update(loaded(instance))
    values = instance.__dict__
    for field in concrete:
        value = values.get(field.attname)
        if field.attname in values and not _is_expression(value):
            snapshot[field.attname] = value
        else:
            snapshot.pop(field.attname, None)
    values[SNAPSHOT_ATTR] = snapshot


def before_save(instance: models.Model, attnames: Collection[str], using: str) -> None:
    """Read the old values of ``attnames`` from the row this save will overwrite, if unknown.

    Called from ``pre_save``; for the common case (an instance loaded from the database and
    saved) it finds everything in the snapshot and does nothing.
    """
    pk = instance._meta.pk
    assert pk is not None
    if instance._state.adding:
        # Django inserts without trying an UPDATE in these cases, so there is no old row.
        if instance.pk is None or pk.has_default() or pk.has_db_default():
            return
        missing = list(attnames)
    else:
        known = loaded(instance)
        missing = [attname for attname in attnames if attname not in known]
    if not missing:
        return
    row = type(instance)._base_manager.using(using).filter(pk=instance.pk).values(*missing).first()
    if row is not None:
        instance.__dict__[SNAPSHOT_ATTR] = {**loaded(instance), **row}


def saved_value(instance: models.Model, attname: str, using: str) -> Any:
    """The value a save just stored, read back only if it was an expression (``F("n") + 1``)."""
    value = instance.__dict__[attname]
    if not _is_expression(value):
        return value
    return (
        type(instance)
        ._base_manager.using(using)
        .filter(pk=instance.pk)
        .values_list(attname, flat=True)
        .get()
    )


def as_loaded(instance: models.Model, snapshot: Mapping[str, Any]) -> models.Model | None:
    """A copy of ``instance`` holding its ``snapshot`` values, or None if none changed."""
    current = instance.__dict__
    changed = {
        attname: old
        for attname, old in snapshot.items()
        if attname in current and current[attname] != old
    }
    if not changed:
        return None
    before = copy.copy(instance)
    before.__dict__.update(changed)
    for field in instance._meta.concrete_fields:
        if (
            field.attname in changed
            and isinstance(field, ForeignObject)
            and field.is_cached(before)
        ):
            field.delete_cached_value(before)
    return before


def watch(model: type[models.Model]) -> None:
    """Keep snapshots right across ``refresh_from_db()``, which reloads without a signal.

    Wraps the model's method once (FieldTracker does the same); the wrapper only touches
    instances that carry a snapshot, so it stays harmless after the trackers are removed.
    """
    original = model.refresh_from_db
    if getattr(original, WATCHED_ATTR, False):
        return
    signature = inspect.signature(original)

    @functools.wraps(original)
    def refresh_from_db(self: models.Model, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if SNAPSHOT_ATTR in self.__dict__:
            fields = signature.bind(self, *args, **kwargs).arguments.get("fields")
            take(self, None if fields is None else frozenset(fields))

    setattr(refresh_from_db, WATCHED_ATTR, True)
    setattr(model, "refresh_from_db", refresh_from_db)  # noqa: B010
