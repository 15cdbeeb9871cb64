"""Subscriptions and their items, including seat (quantity) updates and Stripe's limit of
200 quantity updates per hour per subscription."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import objects, params
from .errors import invalid, missing_param, no_such, rate_limited
from .lists import paginate
from .state import State

JSON = dict[str, Any]

QUANTITY_UPDATES_PER_HOUR = 200
PRORATIONS = ("always_invoice", "create_prorations", "none")
METERED_QUANTITY = "Quantity should not be specified where usage_type is `metered`."


def is_metered(price: JSON) -> bool:
    """Whether a price bills usage rather than a quantity."""
    return bool(price["recurring"]) and price["recurring"]["usage_type"] == "metered"


def create_subscription(state: State, p: Mapping[str, Any]) -> JSON:
    """POST /v1/subscriptions: items[n][price] with items[n][quantity] for licensed prices."""
    customer = params.req_str(p, "customer")
    if customer not in state.customers:
        raise no_such("customer", customer, param="customer", status=400)
    raw_items = p.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        raise missing_param("items")
    now = state.now()
    sub_id = objects.new_id("sub")
    period = (now, objects.add_month(now))
    items = []
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            raise invalid(f"Invalid items[{index}].", param=f"items[{index}]")
        price_id = params.req_str(raw, "price", f"items[{index}][price]")
        price = state.prices.get(price_id)
        if price is None:
            raise no_such("price", price_id, param=f"items[{index}][price]", status=400)
        quantity = _quantity(raw, price, f"items[{index}][quantity]")
        if quantity is None and not is_metered(price):
            quantity = 1
        item = objects.subscription_item(
            objects.new_id("si"),
            now,
            subscription_id=sub_id,
            price_obj=price,
            quantity=quantity,
            period=period,
        )
        items.append(item)
    sub = objects.subscription(
        sub_id,
        now,
        customer_id=customer,
        currency=items[0]["price"]["currency"],
        items=items,
        metadata=params.sub(p, "metadata"),
    )
    state.subscriptions[sub_id] = sub
    for item in items:
        state.items[item["id"]] = item
    return sub


def get_subscription(state: State, sub_id: str) -> JSON:
    """GET /v1/subscriptions/{id}."""
    try:
        return state.subscriptions[sub_id]
    except KeyError:
        raise no_such("subscription", sub_id) from None


def list_subscriptions(state: State, q: Mapping[str, Any]) -> JSON:
    """GET /v1/subscriptions: by ``customer``; ``status`` defaults to all but canceled."""
    customer = params.opt_str(q, "customer")
    status = params.opt_str(q, "status")
    found = [
        s
        for s in reversed(state.subscriptions.values())
        if customer in (None, s["customer"])
        and (
            status == "all"
            or s["status"] == status
            or (status is None and s["status"] != "canceled")
        )
    ]
    return paginate(found, q, "/v1/subscriptions")


def cancel_subscription(state: State, sub_id: str) -> JSON:
    """DELETE /v1/subscriptions/{id}: cancels at once."""
    sub = get_subscription(state, sub_id)
    if sub["status"] == "canceled":
        raise invalid(f"No such subscription: '{sub_id}' is already canceled.", param="id")
    now = state.now()
    sub.update(status="canceled", canceled_at=now, ended_at=now)
    return sub


def get_item(state: State, item_id: str) -> JSON:
    """GET /v1/subscription_items/{id}."""
    try:
        return state.items[item_id]
    except KeyError:
        raise no_such("subscription_item", item_id) from None


def list_items(state: State, q: Mapping[str, Any]) -> JSON:
    """GET /v1/subscription_items?subscription=..."""
    sub = get_subscription(state, params.req_str(q, "subscription"))
    items = sub["items"]["data"]
    return paginate(items, q, "/v1/subscription_items")


def update_item(state: State, item_id: str, p: Mapping[str, Any]) -> JSON:
    """POST /v1/subscription_items/{id}: set the seat count; every change is logged and
    counted against the subscription's hourly limit."""
    item = get_item(state, item_id)
    quantity = _quantity(p, item["price"], "quantity")
    proration = params.choice(p, "proration_behavior", PRORATIONS, "create_prorations")
    if quantity is None:
        return item
    sub_id = item["subscription"]
    now = state.clock.now()
    recent = state.quantity_update_times[sub_id]
    while recent and recent[0] <= now - 3_600:
        recent.popleft()
    if len(recent) >= QUANTITY_UPDATES_PER_HOUR:
        state.seat_rate_limit_hits.append({"subscription": sub_id, "item": item_id, "time": now})
        raise rate_limited(
            "This subscription has had too many quantity updates in the last hour"
            f" (at most {QUANTITY_UPDATES_PER_HOUR}).",
            v2=False,
            should_retry=False,
        )
    recent.append(now)
    item["quantity"] = quantity
    state.quantity_updates.append(
        {
            "item": item_id,
            "subscription": sub_id,
            "quantity": quantity,
            "proration_behavior": proration,
            "time": now,
        }
    )
    return item


def _quantity(p: Mapping[str, Any], price: JSON, label: str) -> int | None:
    """A requested quantity: never on metered prices, never negative."""
    quantity = params.opt_int(p, "quantity", label)
    if quantity is None:
        return None
    if is_metered(price):
        raise invalid(METERED_QUANTITY, param=label)
    if quantity < 0:
        raise invalid(f"Invalid {label}: must be greater than or equal to 0.", param=label)
    return quantity
