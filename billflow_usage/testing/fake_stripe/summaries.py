"""Aggregation: meter event summaries and the totals the inspection API reports."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from . import objects, params
from .errors import invalid, no_such
from .lists import paginate
from .state import MeterEvent, State

JSON = dict[str, Any]

WINDOWS = {"hour": 3_600, "day": 86_400}


def aggregate(events: Iterable[MeterEvent], formula: str) -> int:
    """Combine live (not cancelled) events with a meter formula: sum, count or last."""
    live = [ev for ev in events if not ev.cancelled]
    if formula == "count":
        return len(live)
    if formula == "last":
        return max(live, key=lambda ev: ev.timestamp).value if live else 0
    return sum(ev.value for ev in live)


def formula_of(state: State, events: list[MeterEvent]) -> str:
    """The formula of the meter these events were recorded against."""
    return state.meters[events[0].meter]["default_aggregation"]["formula"] if events else "sum"


def event_summaries(state: State, meter_id: str, q: Mapping[str, Any]) -> JSON:
    """GET /v1/billing/meters/{id}/event_summaries: [start_time, end_time), minute aligned,
    optionally split into hour or UTC-day windows, oldest first."""
    meter = state.meters.get(meter_id)
    if meter is None:
        raise no_such("billing.meter", meter_id)
    customer = params.req_str(q, "customer")
    start = params.req_int(q, "start_time")
    end = params.req_int(q, "end_time")
    window = params.opt_str(q, "value_grouping_window")
    if window is not None and window not in WINDOWS:
        raise invalid("value_grouping_window must be hour or day.", param="value_grouping_window")
    align = WINDOWS[window] if window else 60
    for name, value in (("start_time", start), ("end_time", end)):
        if value % align:
            raise invalid(f"{name} must be aligned to a {window or 'minute'} boundary.", param=name)
    if end <= start:
        raise invalid("end_time must be after start_time.", param="end_time")
    step = WINDOWS[window] if window else end - start
    events = [
        ev
        for ev in state.events_by_key.get((meter["event_name"], customer), ())
        if ev.meter == meter_id and start <= ev.timestamp < end
    ]
    formula = meter["default_aggregation"]["formula"]
    data = []
    for lo in range(start, end, step):
        hi = min(lo + step, end)
        value = aggregate((ev for ev in events if lo <= ev.timestamp < hi), formula)
        summary_id = _summary_id(meter_id, customer, lo, hi)
        data.append(objects.meter_event_summary(summary_id, meter_id, lo, hi, value))
    return paginate(data, q, f"/v1/billing/meters/{meter_id}/event_summaries")


def _summary_id(meter_id: str, customer: str, start: int, end: int) -> str:
    """Stable ids, so ``starting_after`` works across calls."""
    digest = hashlib.sha1(f"{meter_id}:{customer}:{start}:{end}".encode()).hexdigest()
    return f"mtrusg_{digest[:24]}"
