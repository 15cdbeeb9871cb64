"""Stripe's meter error events, read without trusting their shape.

An Event Destination posts a *thin* event (``id``, ``type``, ``created``, no data); the full
event, fetched from ``GET /v2/core/events/{id}``, names refused meter events in
``data.reason.error_types[].sample_errors[].request.identifier``. Both are checked here,
before anything touches the database or Stripe: a value of the wrong type is a
:class:`~billflow_usage.exceptions.MalformedEvent` naming the field (never the value, so
messages and logs carry no payload), not an exception from deep inside the marking.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billflow_usage.exceptions import MalformedEvent
from billflow_usage.redaction import redact

METER_ERROR_EVENTS = (
    "v1.billing.meter.error_report_triggered",
    "v1.billing.meter.no_meter_found",
)
#: Stripe's event IDs (``evt_...``), stored in a 255-character column.
EVENT_ID_RE = re.compile(r"evt_[A-Za-z0-9_]{1,251}")
#: The v1 sender's idempotency keys, ``bfu-me-<identifier>-<attempt>``.
V1_KEY_RE = re.compile(r"^bfu-me-(?P<identifier>.+)-\d+$")


@dataclass(frozen=True)
class EventNotice:
    """What a delivery says: which event, of which type, created when; ``data`` only when
    the body carries the full event."""

    id: str
    type: str
    created: datetime
    data: Mapping[str, Any] | None

    @property
    def is_meter_error(self) -> bool:
        return self.type in METER_ERROR_EVENTS


@dataclass(frozen=True)
class ErrorReport:
    """A full meter error event: the meter event identifiers Stripe refused, each with the
    error code and the message to store on the row."""

    event: EventNotice
    errors: dict[str, tuple[str, str]]


def parse_notice(body: Any) -> EventNotice:
    """The event a delivery's JSON body announces (thin, or full with its ``data``)."""
    if not isinstance(body, Mapping):
        raise MalformedEvent("the body must be a JSON object")
    event_id = body.get("id")
    if not (isinstance(event_id, str) and EVENT_ID_RE.fullmatch(event_id)):
        raise MalformedEvent("id must be an event ID 'evt_...' (letters, digits, underscores)")
    event_type = body.get("type")
    if not isinstance(event_type, str):
        raise MalformedEvent("type must be a string")
    data = body.get("data")
    if data is not None and not isinstance(data, Mapping):
        raise MalformedEvent("data must be an object")
    return EventNotice(event_id, event_type, _created(body.get("created")), data)


def parse_report(event: Mapping[str, Any]) -> ErrorReport:
    """The refused identifiers of a full meter error event (with its ``data``)."""
    notice = parse_notice(event)
    if notice.data is None:
        raise MalformedEvent("data must be an object")
    reason = _optional(notice.data, "reason", Mapping, "data", "an object") or {}
    summary = _optional(notice.data, "developer_message_summary", str, "data", "a string")
    default_code = notice.type.rsplit(".", 1)[-1]
    errors: dict[str, tuple[str, str]] = {}
    error_types = _optional(reason, "error_types", list, "data.reason", "a list") or []
    for i, error_type in enumerate(error_types):
        where = f"data.reason.error_types[{i}]"
        if not isinstance(error_type, Mapping):
            raise MalformedEvent(f"{where} must be an object")
        code = _optional(error_type, "code", str, where, "a string") or default_code
        for j, sample in enumerate(
            _optional(error_type, "sample_errors", list, where, "a list") or []
        ):
            found = _sample(sample, f"{where}.sample_errors[{j}]")
            if found is not None:
                identifier, message = found
                text = message or summary or ""
                errors[identifier] = (code[:100], redact(f"Stripe error report: {text}"))
    return ErrorReport(notice, errors)


def _sample(sample: Any, where: str) -> tuple[str, str | None] | None:
    """(identifier, message) of one sample error, or None when it names no event."""
    if not isinstance(sample, Mapping):
        raise MalformedEvent(f"{where} must be an object")
    message = _optional(sample, "error_message", str, where, "a string")
    request = _optional(sample, "request", Mapping, where, "an object") or {}
    identifier = _optional(request, "identifier", str, f"{where}.request", "a string")
    if not identifier:
        return None
    found = V1_KEY_RE.match(identifier)  # Stripe may give the request's idempotency key
    return (found.group("identifier") if found else identifier), message


def _optional(container: Mapping[str, Any], key: str, kind: type, where: str, what: str) -> Any:
    """``container[key]``: None when absent or null, else of type ``kind``."""
    value = container.get(key)
    if value is not None and not isinstance(value, kind):
        raise MalformedEvent(f"{where}.{key} must be {what}")
    return value


def _created(value: Any) -> datetime:
    """Stripe's v2 ``created``: an ISO 8601 date-time with its offset."""
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise MalformedEvent(
            "created must be an ISO 8601 date-time with an offset, e.g. '2026-06-15T12:00:00.000Z'"
        )
    return moment
