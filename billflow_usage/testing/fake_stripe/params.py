"""Typed access to request parameters with Stripe-style 400s for bad input.

v1 form values arrive as strings, v2 JSON and the in-process creators pass native types, so
each reader accepts both.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from .errors import invalid, missing_param


def opt_str(params: Mapping[str, Any], key: str, label: str | None = None) -> str | None:
    """A string parameter, or None when absent or empty."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise invalid(f"Invalid string: {label or key}.", param=label or key)
    return str(value)


def req_str(params: Mapping[str, Any], key: str, label: str | None = None) -> str:
    """A required, non-empty string parameter."""
    value = opt_str(params, key, label)
    if value is None:
        raise missing_param(label or key)
    return value


def opt_int(params: Mapping[str, Any], key: str, label: str | None = None) -> int | None:
    """An integer parameter (a decimal string in forms), or None when absent."""
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int):
        return value
    text = str(value)
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        name = label or key
        raise invalid(f"Invalid integer: {text}", code="parameter_invalid_integer", param=name)
    return int(text)


def req_int(params: Mapping[str, Any], key: str, label: str | None = None) -> int:
    """A required integer parameter."""
    value = opt_int(params, key, label)
    if value is None:
        raise missing_param(label or key)
    return value


def choice(
    params: Mapping[str, Any],
    key: str,
    choices: Collection[str],
    default: str,
    label: str | None = None,
) -> str:
    """One of ``choices``, or ``default`` when absent."""
    value = opt_str(params, key, label) or default
    if value not in choices:
        name = label or key
        allowed = ", ".join(sorted(choices))
        raise invalid(f"Invalid {name}: must be one of {allowed}", param=name)
    return value


def sub(params: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A nested hash parameter, empty when absent."""
    value = params.get(key)
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid hash: {key}.", param=key)
    return value


def limit(params: Mapping[str, Any]) -> int:
    """The ``limit`` of a list call: 1..100, default 10."""
    value = opt_int(params, "limit")
    if value is None:
        return 10
    if not 1 <= value <= 100:
        raise invalid("limit must be between 1 and 100.", param="limit")
    return value
