"""``bulk_create_with_usage()``: ``bulk_create()`` that records what the trackers would have.

Django sends no signals for ``bulk_create()`` or ``QuerySet.update()``, so trackers never see
them (django-simple-history has ``bulk_create_with_history()`` for the same reason). Use this
helper for bulk creations, and ``record_usage_bulk()`` for other bulk writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import NotSupportedError, connections, models, transaction

from billflow_usage.tracking.registry import registry

ModelT = TypeVar("ModelT", bound=models.Model)
REFUSED_OPTIONS = ("ignore_conflicts", "update_conflicts")


def bulk_create_with_usage(
    model_or_queryset: type[ModelT] | models.QuerySet[ModelT] | models.Manager[ModelT],
    objs: Iterable[ModelT],
    **kwargs: Any,
) -> list[ModelT]:
    """``bulk_create(objs, **kwargs)``, and the usage the model's trackers record on create.

    Both happen in one transaction. The usage goes through ``record_usage_bulk()`` with the
    identifiers ``post_save`` would have used, so saving one of these objects later never
    records its creation again; seat trackers recompute once, after the commit.
    """
    for option in REFUSED_OPTIONS:
        if kwargs.get(option):
            raise TypeError(
                f"bulk_create_with_usage() doesn't accept {option}=True: which rows were "
                "created is then unknown. Create them first, then call record_usage_bulk() "
                "for the ones that are new."
            )
    queryset = (
        model_or_queryset._default_manager.all()
        if isinstance(model_or_queryset, type)
        else model_or_queryset.all()
    )
    using = queryset.db
    tracked = registry.contains(queryset.model)
    if tracked and not connections[using].features.can_return_rows_from_bulk_insert:
        raise NotSupportedError(
            f"The {using!r} database doesn't return primary keys from bulk inserts, so the "
            "usage can't name the objects created; save() them one by one instead."
        )
    with transaction.atomic(using=using):
        created = queryset.bulk_create(objs, **kwargs)
        if tracked:
            registry.record_bulk_created(queryset.model, created, using)
    return created
