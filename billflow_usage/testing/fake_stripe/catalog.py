"""Customers, products and prices: the objects other resources point at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import objects, params
from .errors import invalid, no_such
from .lists import paginate
from .state import State

JSON = dict[str, Any]

#: Metered prices without a meter could be created before this API version.
BASIL = "2025-03-31"


def before_basil(stripe_version: str | None) -> bool:
    """Whether a request's ``Stripe-Version`` predates 2025-03-31.basil (date part compared)."""
    return stripe_version is not None and stripe_version.split(".")[0] < BASIL


def create_customer(state: State, p: Mapping[str, Any]) -> JSON:
    """POST /v1/customers."""
    obj = objects.customer(
        params.opt_str(p, "id") or objects.new_id("cus"),
        state.now(),
        params.opt_str(p, "email"),
        params.opt_str(p, "name"),
        params.sub(p, "metadata"),
    )
    state.customers[obj["id"]] = obj
    return obj


def get_customer(state: State, customer_id: str) -> JSON:
    """GET /v1/customers/{id}."""
    try:
        return state.customers[customer_id]
    except KeyError:
        raise no_such("customer", customer_id) from None


def list_customers(state: State, q: Mapping[str, Any]) -> JSON:
    """GET /v1/customers, newest first, optionally filtered by ``email``."""
    email = params.opt_str(q, "email")
    found = [c for c in reversed(state.customers.values()) if email in (None, c["email"])]
    return paginate(found, q, "/v1/customers")


def create_product(state: State, p: Mapping[str, Any]) -> JSON:
    """POST /v1/products."""
    obj = objects.product(
        params.opt_str(p, "id") or objects.new_id("prod"),
        state.now(),
        params.req_str(p, "name"),
        params.sub(p, "metadata"),
    )
    if obj["id"] in state.products:
        raise invalid(f"Product already exists with ID '{obj['id']}'.", param="id")
    state.products[obj["id"]] = obj
    return obj


def create_price(state: State, p: Mapping[str, Any], *, allow_meterless: bool) -> JSON:
    """POST /v1/prices; ``allow_meterless`` lets legacy API versions create meterless
    metered prices, which Stripe refuses from 2025-03-31.basil on."""
    currency = params.req_str(p, "currency").lower()
    unit_amount = params.opt_int(p, "unit_amount")
    if unit_amount is None:
        unit_amount = params.opt_int(p, "unit_amount_decimal")
    if unit_amount is None or unit_amount < 0:
        raise invalid("A non-negative unit_amount is required.", param="unit_amount")
    product_id = params.opt_str(p, "product")
    if product_id is None:
        data = params.sub(p, "product_data")
        name = params.req_str(data, "name", "product_data[name]")
        product_id = create_product(state, {"name": name})["id"]
    elif product_id not in state.products:
        raise no_such("product", product_id, param="product", status=400)
    rec = _recurring(state, params.sub(p, "recurring"), allow_meterless=allow_meterless)
    obj = objects.price(
        objects.new_id("price"),
        state.now(),
        product_id=product_id,
        currency=currency,
        unit_amount=unit_amount,
        recurring=rec,
        nickname=params.opt_str(p, "nickname"),
        lookup_key=params.opt_str(p, "lookup_key"),
        metadata=params.sub(p, "metadata"),
    )
    state.prices[obj["id"]] = obj
    return obj


def _recurring(state: State, r: Mapping[str, Any], *, allow_meterless: bool) -> JSON | None:
    """Validate ``recurring[...]``: metered prices need a meter, licensed ones must not have one."""
    if not r:
        return None
    params.req_str(r, "interval", "recurring[interval]")
    interval = params.choice(
        r, "interval", ("day", "week", "month", "year"), "month", "recurring[interval]"
    )
    usage_type = params.choice(
        r, "usage_type", ("licensed", "metered"), "licensed", "recurring[usage_type]"
    )
    meter_id = params.opt_str(r, "meter", "recurring[meter]")
    if meter_id is not None and meter_id not in state.meters:
        raise no_such("billing.meter", meter_id, param="recurring[meter]", status=400)
    if meter_id is not None and usage_type != "metered":
        raise invalid(
            "A meter can only be set when usage_type is `metered`.", param="recurring[meter]"
        )
    if usage_type == "metered" and meter_id is None and not allow_meterless:
        raise invalid(
            "Metered prices must be backed by a meter: pass recurring[meter].",
            param="recurring[meter]",
        )
    count = params.opt_int(r, "interval_count", "recurring[interval_count]") or 1
    return objects.recurring(interval, count, usage_type, meter_id)


def get_price(state: State, price_id: str) -> JSON:
    """GET /v1/prices/{id}."""
    try:
        return state.prices[price_id]
    except KeyError:
        raise no_such("price", price_id) from None


def list_prices(state: State, q: Mapping[str, Any]) -> JSON:
    """GET /v1/prices, newest first, optionally filtered by ``product``."""
    product_id = params.opt_str(q, "product")
    found = [p for p in reversed(state.prices.values()) if product_id in (None, p["product"])]
    return paginate(found, q, "/v1/prices")
