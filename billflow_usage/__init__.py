"""billflow_usage: record Django model saves as usage billed through Stripe.

The public API is imported lazily so that ``import billflow_usage`` works in settings and
``models.py`` before Django's app registry is ready.

What is public: the names in ``__all__`` below, and what the documentation names as public
(the models of ``billflow_usage.models``, ``billflow_usage.signals``,
``billflow_usage.exceptions``, ``billflow_usage.backends.base`` for writing a backend, the
shipped backends' dotted paths, ``billflow_usage.testing``, ``billflow_usage.views`` and
``billflow_usage.urls``, the ``BILLFLOW_USAGE`` keys, the check ids, the management commands
and their options). Everything else is internal, whatever its name, and may change in any
release; ``track()``'s options are typed once in ``billflow_usage.tracking.options``.

Deprecation: a public name or behaviour changes incompatibly only after one release in
which it still works, warns with a ``DeprecationWarning`` naming its replacement and the
release that removes it, and the changelog says so; security fixes may not wait.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from billflow_usage.exceptions import LimitExceeded
    from billflow_usage.ledger import Usage, record_usage, record_usage_bulk, set_quantity
    from billflow_usage.tracking import (
        bulk_create_with_usage,
        track,
        track_quantity,
        tracking_disabled,
    )
    from billflow_usage.usage_limits.checking import LimitStatus, check_limit
    from billflow_usage.usage_limits.decorators import limited
    from billflow_usage.usage_limits.usage import current_usage

#: The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0"

_PUBLIC = {
    "Usage": "billflow_usage.ledger",
    "record_usage": "billflow_usage.ledger",
    "record_usage_bulk": "billflow_usage.ledger",
    "set_quantity": "billflow_usage.ledger",
    "track": "billflow_usage.tracking",
    "track_quantity": "billflow_usage.tracking",
    "tracking_disabled": "billflow_usage.tracking",
    "bulk_create_with_usage": "billflow_usage.tracking",
    "current_usage": "billflow_usage.usage_limits.usage",
    "check_limit": "billflow_usage.usage_limits.checking",
    "LimitStatus": "billflow_usage.usage_limits.checking",
    "LimitExceeded": "billflow_usage.exceptions",
    "limited": "billflow_usage.usage_limits.decorators",
}

__all__ = [
    "LimitExceeded",
    "LimitStatus",
    "Usage",
    "bulk_create_with_usage",
    "check_limit",
    "current_usage",
    "limited",
    "record_usage",
    "record_usage_bulk",
    "set_quantity",
    "track",
    "track_quantity",
    "tracking_disabled",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'billflow_usage' has no attribute {name!r}")
