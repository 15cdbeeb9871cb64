"""Cursor pagination for v1 list endpoints (``limit``, ``starting_after``, ``ending_before``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import objects, params
from .errors import invalid

JSON = dict[str, Any]


def paginate(items: Sequence[JSON], query: Mapping[str, Any], url: str) -> JSON:
    """One page of ``items`` (already in list order) as a Stripe list object."""
    size = params.limit(query)
    after = params.opt_str(query, "starting_after")
    before = params.opt_str(query, "ending_before")
    ids = [item["id"] for item in items]
    if after is not None:
        start = _position(ids, after, "starting_after") + 1
        page = items[start : start + size]
        return objects.list_object(list(page), url, start + size < len(items))
    if before is not None:
        end = _position(ids, before, "ending_before")
        page = items[max(0, end - size) : end]
        return objects.list_object(list(page), url, end - size > 0)
    return objects.list_object(list(items[:size]), url, size < len(items))


def _position(ids: list[str], cursor: str, param: str) -> int:
    """Where the cursor object sits in the list."""
    try:
        return ids.index(cursor)
    except ValueError:
        raise invalid(f"No such object for {param}: '{cursor}'", param=param) from None
