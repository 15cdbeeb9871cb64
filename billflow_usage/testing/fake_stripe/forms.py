"""Decode request parameters: Stripe's bracketed form encoding (v1) and JSON (v2)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from .errors import invalid


def parse_form(text: str) -> dict[str, Any]:
    """Turn ``a[b][0][c]=1`` pairs into nested dicts; all-numeric keys become lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        head, _, rest = key.partition("[")
        parts = [head, *rest[:-1].split("][")] if rest.endswith("]") else [key]
        node = root
        for part in parts[:-1]:
            name = part or str(len(node))  # "a[]" appends
            child = node.get(name)
            if not isinstance(child, dict):
                child = node[name] = {}
            node = child
        node[parts[-1] or str(len(node))] = value
    return _listify(root)


def _listify(node: dict[str, Any]) -> dict[str, Any]:
    """Replace ``{"0": .., "1": ..}`` maps (how lists travel in forms) with lists."""
    for key, value in node.items():
        if isinstance(value, dict):
            value = _listify(value)
            if value and all(k.isdigit() for k in value):
                value = [value[k] for k in sorted(value, key=int)]
            node[key] = value
    return node


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a v2 JSON body; an empty body means no parameters."""
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise invalid(f"Invalid JSON body: {exc}.") from exc
    if not isinstance(data, dict):
        raise invalid("The request body must be a JSON object.")
    return data
