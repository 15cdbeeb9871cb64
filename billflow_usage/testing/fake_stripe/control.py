"""The ``/_fake/`` control surface, so another process can inspect and steer the fake."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from .clock import Clock
from .dispatch import encode
from .events import deliver_errors
from .faults import Faults
from .idempotency import Reply
from .keys import Keys
from .state import State
from .summaries import aggregate, formula_of
from .usage_records import totals as usage_record_totals

JSON = dict[str, Any]


def summary(state: State, faults: Faults, clock: Clock, keys: Keys | None = None) -> JSON:
    """A JSON-ready picture of what the fake has received."""
    with state.lock:
        totals = [
            {
                "event_name": event_name,
                "customer": customer,
                "total": aggregate(events, formula_of(state, events)),
                "events": sum(not ev.cancelled for ev in events),
            }
            for (event_name, customer), events in state.events_by_key.items()
        ]
        items = [
            {
                "id": item["id"],
                "subscription": item["subscription"],
                "price": item["price"]["id"],
                "quantity": item.get("quantity"),
            }
            for item in state.items.values()
        ]
        log = list(state.request_log)
        result: JSON = {
            "now": clock.now(),
            "meter_totals": totals,
            "events": {
                "accepted": sum(t["events"] for t in totals),
                "cancelled": sum(
                    ev.cancelled for events in state.events_by_key.values() for ev in events
                ),
                "duplicate_identifier_rejections": state.duplicate_identifier_rejections,
                "duplicate_identifiers_ignored": state.duplicate_identifiers_ignored,
            },
            "error_reports": list(state.error_reports),
            "subscription_items": items,
            "quantity_updates": len(state.quantity_updates),
            "seat_rate_limit_hits": len(state.seat_rate_limit_hits),
            "usage_record_totals": usage_record_totals(state),
            "sessions": len(state.sessions),
            "max_concurrency_per_customer_meter": [
                {"event_name": name, "customer": customer, "max": peak}
                for (name, customer), peak in state.max_concurrency.items()
            ],
        }
    result["requests"] = {
        "total": len(log),
        "by_route": dict(Counter(f"{r.method} {r.route or r.path}" for r in log)),
    }
    result["faults"] = faults_state(faults)
    if keys is not None:
        result["keys"] = keys.summary()
    return result


def forget_sessions(state: State) -> int:
    """Drop every v2 meter event session (a restarted Stripe); how many there were."""
    with state.lock:
        count = len(state.sessions)
        state.sessions.clear()
    return count


def faults_state(faults: Faults) -> JSON:
    """Active fault rules and how often each kind fired."""
    return {
        "rules": [rule.as_dict() for rule in faults.rules],
        "counters": dict(faults.counters),
    }


class Control:
    """Serves ``/_fake/state``, ``/_fake/reset``, ``/_fake/faults``, ``/_fake/clock``,
    ``/_fake/keys``, ``/_fake/sessions`` and ``/_fake/meter_error_events``."""

    def __init__(
        self, state: State, faults: Faults, clock: Clock, keys: Keys, reset: Callable[[], None]
    ) -> None:
        self.state = state
        self.faults = faults
        self.clock = clock
        self.keys = keys
        self.reset = reset
        #: (method, path) -> what answers it, given the request's JSON body.
        self.endpoints: dict[tuple[str, str], Callable[[JSON], JSON]] = {
            ("GET", "/_fake/state"): lambda _: summary(state, faults, clock, keys),
            ("POST", "/_fake/reset"): self._reset,
            ("GET", "/_fake/faults"): lambda _: faults_state(faults),
            ("POST", "/_fake/faults"): self._configure_faults,
            ("DELETE", "/_fake/faults"): self._clear_faults,
            ("GET", "/_fake/clock"): self._move_clock,
            ("POST", "/_fake/clock"): self._move_clock,
            ("GET", "/_fake/keys"): lambda _: keys.summary(),
            ("POST", "/_fake/keys"): self._change_keys,
            ("DELETE", "/_fake/sessions"): lambda _: {"forgotten": forget_sessions(state)},
            ("POST", "/_fake/meter_error_events"): self._meter_error_events,
        }

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        """Answer a control request; faults never apply here."""
        try:
            data = json.loads(body) if body else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            endpoint = self.endpoints.get((method, path))
            result = None if endpoint is None else endpoint(data)
        except (ValueError, TypeError) as exc:
            return _reply(400, {"error": {"type": "invalid_request_error", "message": str(exc)}})
        if result is None:
            message = f"Unrecognized control URL ({method}: {path})."
            return _reply(404, {"error": {"type": "invalid_request_error", "message": message}})
        return _reply(200, result)

    def _reset(self, _data: JSON) -> JSON:
        self.reset()
        return {"reset": True}

    def _configure_faults(self, data: JSON) -> JSON:
        self.faults.configure(data)
        return faults_state(self.faults)

    def _clear_faults(self, _data: JSON) -> JSON:
        self.faults.clear()
        return faults_state(self.faults)

    def _move_clock(self, data: JSON) -> JSON:
        """``{"set": epoch}`` and/or ``{"advance": seconds}``; ``{}`` only reads the clock."""
        if "set" in data:
            self.clock.set(float(data["set"]))
        if "advance" in data:
            self.clock.advance(float(data["advance"]))
        return {"now": self.clock.now()}

    def _meter_error_events(self, data: JSON) -> JSON:
        """``{"secret": "whsec_..." or [...], "max_samples": 3}``: the signed thin events."""
        secrets, max_samples = data.get("secret", ""), data.get("max_samples")
        deliveries = deliver_errors(self.state, secrets, max_samples=max_samples)
        return {"events": [delivery.as_dict() for delivery in deliveries]}

    def _change_keys(self, data: JSON) -> JSON:
        """``{"revoke": key}``, ``{"restore": key}``, ``{"deny": key, "route": ...,
        "method": ...}`` or ``{"allow": key}``."""
        actions = [name for name in ("revoke", "restore", "deny", "allow") if name in data]
        if len(actions) != 1 or not isinstance(data[actions[0]], str):
            raise ValueError('give one of "revoke", "restore", "deny" or "allow" with a key')
        action, key = actions[0], data[actions[0]]
        if action == "deny":
            self.keys.deny(key, str(data.get("route", "*")), data.get("method"))
        else:
            getattr(self.keys, action)(key)
        return self.keys.summary()


def _reply(status: int, body: JSON) -> Reply:
    return Reply(status, encode(body))
