"""Billing meters: one active meter per event name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import objects, params
from .errors import invalid, no_such
from .lists import paginate
from .state import State

JSON = dict[str, Any]

FORMULAS = ("count", "last", "sum")


def create_meter(state: State, p: Mapping[str, Any]) -> JSON:
    """POST /v1/billing/meters."""
    event_name = params.req_str(p, "event_name")
    if event_name in state.active_meters:
        raise invalid(
            f"An active meter with event_name '{event_name}' already exists.",
            param="event_name",
        )
    aggregation = params.sub(p, "default_aggregation")
    params.req_str(aggregation, "formula", "default_aggregation[formula]")
    obj = objects.meter(
        objects.new_id("mtr_test"),
        state.now(),
        display_name=params.req_str(p, "display_name"),
        event_name=event_name,
        formula=params.choice(
            aggregation, "formula", FORMULAS, "sum", "default_aggregation[formula]"
        ),
        customer_key=params.opt_str(params.sub(p, "customer_mapping"), "event_payload_key")
        or "stripe_customer_id",
        value_key=params.opt_str(params.sub(p, "value_settings"), "event_payload_key") or "value",
        event_time_window=_time_window(p),
    )
    state.meters[obj["id"]] = obj
    state.active_meters[event_name] = obj["id"]
    return obj


def _time_window(p: Mapping[str, Any]) -> str | None:
    """``event_time_window`` for pre-aggregated events: hour, day or none."""
    if params.opt_str(p, "event_time_window") is None:
        return None
    return params.choice(p, "event_time_window", ("day", "hour"), "hour")


def get_meter(state: State, meter_id: str) -> JSON:
    """GET /v1/billing/meters/{id}."""
    try:
        return state.meters[meter_id]
    except KeyError:
        raise no_such("billing.meter", meter_id) from None


def update_meter(state: State, meter_id: str, p: Mapping[str, Any]) -> JSON:
    """POST /v1/billing/meters/{id}: only ``display_name`` may change."""
    obj = get_meter(state, meter_id)
    obj["display_name"] = params.opt_str(p, "display_name") or obj["display_name"]
    obj["updated"] = state.now()
    return obj


def list_meters(state: State, q: Mapping[str, Any]) -> JSON:
    """GET /v1/billing/meters, newest first, optionally filtered by ``status``."""
    status = params.opt_str(q, "status")
    found = [m for m in reversed(state.meters.values()) if status in (None, m["status"])]
    return paginate(found, q, "/v1/billing/meters")


def deactivate_meter(state: State, meter_id: str) -> JSON:
    """POST /v1/billing/meters/{id}/deactivate: later events for its name are refused."""
    obj = get_meter(state, meter_id)
    if obj["status"] == "active":
        now = state.now()
        obj.update(status="inactive", updated=now)
        obj["status_transitions"]["deactivated_at"] = now
        state.active_meters.pop(obj["event_name"], None)
    return obj


def reactivate_meter(state: State, meter_id: str) -> JSON:
    """POST /v1/billing/meters/{id}/reactivate, unless another meter took its event name."""
    obj = get_meter(state, meter_id)
    if obj["status"] == "inactive":
        if obj["event_name"] in state.active_meters:
            raise invalid(
                f"An active meter with event_name '{obj['event_name']}' already exists.",
                param="event_name",
            )
        obj.update(status="active", updated=state.now())
        obj["status_transitions"]["deactivated_at"] = None
        state.active_meters[obj["event_name"]] = meter_id
    return obj
