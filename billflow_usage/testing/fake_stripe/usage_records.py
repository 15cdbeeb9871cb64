"""Legacy usage records, removed in API version 2025-03-31.basil but still reachable by
pinning an older ``Stripe-Version`` for metered prices that have no meter.

Stripe keeps one quantity per item and timestamp: ``increment`` adds to it, ``set``
overwrites it, and the period's usage adds them up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import objects, params
from .catalog import before_basil
from .errors import invalid
from .state import State
from .subscriptions import get_item, is_metered

JSON = dict[str, Any]


def create_usage_record(
    state: State, item_id: str, p: Mapping[str, Any], stripe_version: str | None
) -> JSON:
    """POST /v1/subscription_items/{id}/usage_records."""
    if not before_basil(stripe_version):
        raise invalid(
            "Usage records were removed in API version 2025-03-31.basil: report usage with "
            "Billing Meters, or pin an older Stripe-Version for legacy metered prices."
        )
    item = get_item(state, item_id)
    price = item["price"]
    if not is_metered(price) or price["recurring"]["meter"] is not None:
        raise invalid(
            "Usage records can only be created for items on a metered price without a meter."
        )
    quantity = params.req_int(p, "quantity")
    if quantity < 0:
        raise invalid("quantity must be greater than or equal to 0.", param="quantity")
    raw_ts = p.get("timestamp")
    timestamp = state.now() if raw_ts in (None, "now") else params.req_int(p, "timestamp")
    action = params.choice(p, "action", ("increment", "set"), "increment")
    at = state.usage_records.setdefault(item_id, {})
    at[str(timestamp)] = quantity + (at.get(str(timestamp), 0) if action == "increment" else 0)
    return objects.usage_record(item_id, quantity, timestamp)


def totals(state: State) -> dict[str, int]:
    """Each item's usage: the sum of its quantities over timestamps (lock held)."""
    return {item: sum(at.values()) for item, at in state.usage_records.items()}
