"""Legacy usage records, removed in API version 2025-03-31.basil but still reachable by
pinning an older ``Stripe-Version`` for metered prices that have no meter."""

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
    totals = state.usage_record_totals
    totals[item_id] = quantity + (totals.get(item_id, 0) if action == "increment" else 0)
    return objects.usage_record(item_id, quantity, timestamp)
