"""billflow_usage: record Django model saves as usage billed through Stripe.

The public API is imported lazily so that ``import billflow_usage`` works in settings and
``models.py`` before Django's app registry is ready.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from billflow_usage.ledger import Usage, record_usage, record_usage_bulk, set_quantity

__version__ = "0.1.0"

_PUBLIC = {
    "Usage": "billflow_usage.ledger",
    "record_usage": "billflow_usage.ledger",
    "record_usage_bulk": "billflow_usage.ledger",
    "set_quantity": "billflow_usage.ledger",
}

__all__ = ["Usage", "record_usage", "record_usage_bulk", "set_quantity"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'billflow_usage' has no attribute {name!r}")
