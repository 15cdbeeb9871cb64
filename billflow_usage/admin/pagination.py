"""A paginator that doesn't count a whole large table on PostgreSQL."""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

from billflow_usage.admin.generic import Paginator

#: Below this estimate an exact count is cheap enough to be worth it.
EXACT_COUNT_BELOW = 100_000


class EstimatedCountPaginator(Paginator[Any]):
    """Use PostgreSQL's planner estimate for the unfiltered table, an exact count otherwise."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        if queryset.query.where or connections[queryset.db].vendor != "postgresql":
            return super().count
        with connections[queryset.db].cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [queryset.model._meta.db_table],
            )
            row = cursor.fetchone()
        estimate = int(row[0]) if row else -1
        return estimate if estimate >= EXACT_COUNT_BELOW else super().count
