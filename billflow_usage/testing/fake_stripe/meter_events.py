"""Meter events (v1, v2 single, v2 stream), their cancellation and v2 sessions.

The same rules apply everywhere; only how a broken event is reported differs: the synchronous
endpoints answer 400, the stream accepts the request and files an error report, as Stripe's
asynchronous validation does (:mod:`.events` turns the reports into Stripe's events).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from . import objects, params
from .errors import StripeError, authentication, invalid, missing_param, session_expired
from .events import meter_of
from .state import Key, MeterEvent, State

JSON = dict[str, Any]

DAY = 86_400
PAST_LIMIT = 35 * DAY
FUTURE_LIMIT = 5 * 60
IDENTIFIER_WINDOW = DAY
CANCEL_WINDOW = DAY
SESSION_TTL = 15 * 60
MAX_STREAM_EVENTS = 100
MAX_DIGITS = 15


def create_v1(state: State, p: Mapping[str, Any]) -> JSON:
    """POST /v1/billing/meter_events."""
    event_name = params.req_str(p, "event_name")
    payload = _payload(p.get("payload"))
    timestamp = params.opt_int(p, "timestamp")
    ev = _accept(
        state,
        event_name,
        payload,
        params.opt_str(p, "identifier") or str(uuid.uuid4()),
        state.now() if timestamp is None else timestamp,
        "v1",
    )
    return objects.meter_event(event_name, ev.identifier, payload, ev.timestamp, int(ev.created))


def create_v2(state: State, p: Mapping[str, Any]) -> JSON:
    """POST /v2/billing/meter_events: one event, validated synchronously."""
    event_name, payload, identifier, timestamp = _parse_v2_event(p, state.now(), "")
    ev = _accept(state, event_name, payload, identifier, timestamp, "v2")
    return objects.meter_event_v2(event_name, identifier, payload, timestamp, ev.created)


def stream(state: State, p: Mapping[str, Any]) -> JSON:
    """POST /v2/billing/meter_event_stream: malformed requests fail whole; events that break a
    billing rule become error reports and duplicates are dropped silently."""
    events = p.get("events")
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_STREAM_EVENTS:
        raise invalid(
            f"events must be a list of 1 to {MAX_STREAM_EVENTS} meter events.", param="events"
        )
    now = state.now()
    parsed = [_parse_v2_event(e, now, f"events[{i}].") for i, e in enumerate(events)]
    created = state.clock.now()
    for event_name, payload, identifier, timestamp in parsed:
        try:
            ev = _validate(state, event_name, payload, identifier, timestamp, created, "stream")
        except StripeError as exc:
            state.error_reports.append(
                {
                    "identifier": identifier,
                    "event_name": event_name,
                    "meter": meter_of(state, event_name),
                    "code": exc.code,
                    "message": exc.message,
                    "time": now,
                }
            )
            continue
        if _is_duplicate(state, identifier, created):
            state.duplicate_identifiers_ignored += 1
        else:
            _store(state, ev)
    return {}


def cancel_v1(state: State, p: Mapping[str, Any]) -> JSON:
    """POST /v1/billing/meter_event_adjustments."""
    event_name, identifier = _cancel_params(p, "cancel[identifier]")
    _cancel(state, event_name, identifier)
    return objects.meter_event_adjustment(event_name, identifier)


def cancel_v2(state: State, p: Mapping[str, Any]) -> JSON:
    """POST /v2/billing/meter_event_adjustments."""
    event_name, identifier = _cancel_params(p, "cancel.identifier")
    _cancel(state, event_name, identifier)
    return objects.meter_event_adjustment_v2(event_name, identifier, state.clock.now())


def create_session(state: State) -> JSON:
    """POST /v2/billing/meter_event_session: a token for the stream, valid 15 minutes."""
    token = f"mes_test_{uuid.uuid4().hex}"
    now = state.clock.now()
    state.sessions[token] = now + SESSION_TTL
    return objects.meter_event_session(token, now, now + SESSION_TTL)


def check_session(state: State, token: str) -> None:
    """Authenticate a stream request by its session token."""
    expires_at = state.sessions.get(token)
    if expires_at is None:
        raise authentication("Invalid meter event session token.")
    if state.clock.now() >= expires_at:
        raise session_expired()


def concurrency_key(state: State, p: Mapping[str, Any]) -> Key | None:
    """(event_name, customer) of a single-event request, for the in-flight counter."""
    event_name, payload = p.get("event_name"), p.get("payload")
    if not isinstance(event_name, str) or not isinstance(payload, dict):
        return None
    meter_id = state.active_meters.get(event_name)
    key = (
        state.meters[meter_id]["customer_mapping"]["event_payload_key"]
        if meter_id
        else "stripe_customer_id"
    )
    customer = payload.get(key)
    return (event_name, customer) if isinstance(customer, str) else None


def _payload(value: Any) -> dict[str, Any]:
    """The ``payload`` hash, required and non-empty."""
    if not isinstance(value, dict) or not value:
        raise missing_param("payload")
    return value


def _parse_v2_event(e: Any, now: int, where: str) -> tuple[str, dict[str, Any], str, int]:
    """Shape-check one v2 event: (event_name, payload, identifier, unix timestamp)."""
    if not isinstance(e, dict):
        raise invalid(f"{where or 'The event'} must be an object.", param=where.rstrip("."))
    event_name = params.req_str(e, "event_name", f"{where}event_name")
    payload = _payload(e.get("payload"))
    identifier = params.opt_str(e, "identifier", f"{where}identifier") or str(uuid.uuid4())
    text = e.get("timestamp")
    if text is None:
        return event_name, payload, identifier, now
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise invalid(
            f"Invalid timestamp {text!r}: expected an ISO 8601 date-time.",
            param=f"{where}timestamp",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return event_name, payload, identifier, int(moment.timestamp())


def _accept(
    state: State,
    event_name: str,
    payload: dict[str, Any],
    identifier: str,
    timestamp: int,
    source: str,
) -> MeterEvent:
    """Validate and store a synchronous event; a duplicate identifier is a 400."""
    created = state.clock.now()
    ev = _validate(state, event_name, payload, identifier, timestamp, created, source)
    if _is_duplicate(state, identifier, created):
        state.duplicate_identifier_rejections += 1
        raise StripeError(
            400,
            f"An event already exists with identifier {identifier}.",
            param="identifier",
            headers={"Stripe-Should-Retry": "false"},
        )
    _store(state, ev)
    return ev


def _validate(
    state: State,
    event_name: str,
    payload: dict[str, Any],
    identifier: str,
    timestamp: int,
    created: float,
    source: str,
) -> MeterEvent:
    """Apply Stripe's meter event rules; errors carry the error-report code."""
    meter_id = state.active_meters.get(event_name)
    if meter_id is None:
        archived = any(m["event_name"] == event_name for m in state.meters.values())
        raise invalid(
            f"No active meter was found for event_name '{event_name}'"
            + (" (its meter is deactivated)." if archived else "."),
            code="archived_meter" if archived else "no_meter",
            param="event_name",
        )
    meter = state.meters[meter_id]
    customer_key = meter["customer_mapping"]["event_payload_key"]
    customer = payload.get(customer_key)
    if not customer:
        raise invalid(
            f"The payload has no customer under '{customer_key}'.",
            code="meter_event_no_customer_defined",
            param=f"payload[{customer_key}]",
        )
    if customer not in state.customers:
        raise invalid(
            f"No such customer: '{customer}'.",
            code="meter_event_customer_not_found",
            param=f"payload[{customer_key}]",
        )
    value = _value(meter, payload)
    if timestamp < created - PAST_LIMIT:
        raise invalid(
            "The event timestamp is too far in the past: it must be within the past 35 days.",
            code="timestamp_too_far_in_past",
            param="timestamp",
        )
    if timestamp > created + FUTURE_LIMIT:
        raise invalid(
            "The event timestamp is in the future: it may be at most 5 minutes ahead.",
            code="timestamp_in_future",
            param="timestamp",
        )
    return MeterEvent(
        identifier, event_name, meter_id, str(customer), value, timestamp, created, source
    )


def _value(meter: JSON, payload: Mapping[str, Any]) -> int:
    """The event's whole-number value; count meters don't need one."""
    key = meter["value_settings"]["event_payload_key"]
    raw = payload.get(key)
    if raw is None and meter["default_aggregation"]["formula"] == "count":
        return 1
    text = "" if raw is None or isinstance(raw, bool) else str(raw)
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise invalid(
            f"The value under '{key}' must be a whole number, got {raw!r}.",
            code="meter_event_invalid_value",
            param=f"payload[{key}]",
        )
    if len(digits.lstrip("0")) > MAX_DIGITS:
        raise invalid(
            f"The value under '{key}' has more than {MAX_DIGITS} significant digits.",
            code="meter_event_value_too_many_digits",
            param=f"payload[{key}]",
        )
    return int(text)


def _is_duplicate(state: State, identifier: str, now: float) -> bool:
    """Whether ``identifier`` was accepted within the rolling 24-hour window."""
    seen = state.events_by_identifier.get(identifier)
    return seen is not None and now - seen.created < IDENTIFIER_WINDOW


def _store(state: State, ev: MeterEvent) -> None:
    state.events_by_identifier[ev.identifier] = ev
    state.events_by_key[(ev.event_name, ev.customer)].append(ev)


def _cancel_params(p: Mapping[str, Any], label: str) -> tuple[str, str]:
    """(event_name, identifier) of a cancel adjustment."""
    event_name = params.req_str(p, "event_name")
    params.choice(p, "type", ("cancel",), "cancel")
    return event_name, params.req_str(params.sub(p, "cancel"), "identifier", label)


def _cancel(state: State, event_name: str, identifier: str) -> None:
    """Cancel an event received less than 24 hours ago.

    Cancelling it again is refused with a 400 saying so. Stripe doesn't document that answer
    (it may as well accept the repeat): this is the less convenient of the two, which a
    client retrying a cancellation must take as "cancelled".
    """
    ev = state.events_by_identifier.get(identifier)
    if ev is None or ev.event_name != event_name:
        raise invalid(
            f"No meter event with identifier '{identifier}' exists for '{event_name}'.",
            code="resource_missing",
            param="cancel[identifier]",
        )
    if state.clock.now() - ev.created > CANCEL_WINDOW:
        raise invalid(
            "Meter events can only be cancelled within 24 hours of being received.",
            param="cancel[identifier]",
        )
    if ev.cancelled:
        raise invalid(
            f"The meter event with identifier '{identifier}' has already been canceled.",
            param="cancel[identifier]",
        )
    ev.cancelled = True
