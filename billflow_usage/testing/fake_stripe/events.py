"""Thin events: Stripe's asynchronous meter error reports, as an Event Destination gets them.

Stripe validates stream events after accepting them and reports the failures later, as v2
events: ``v1.billing.meter.error_report_triggered`` for each meter with refused events, and
``v1.billing.meter.no_meter_found`` for events whose name no meter counts. The destination
receives a *thin* event (id, type, created, related object; no data), signed in a
``Stripe-Signature`` header, and fetches the full event, whose ``data.reason.error_types``
carry samples naming the refused events' identifiers, from ``GET /v2/core/events/{id}``
(for 30 days).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import objects
from .errors import no_such
from .state import State

JSON = dict[str, Any]

ERROR_REPORT_TRIGGERED = "v1.billing.meter.error_report_triggered"
NO_METER_FOUND = "v1.billing.meter.no_meter_found"
#: Stripe keeps v2 events retrievable for 30 days.
EVENT_RETENTION = 30 * 86_400


@dataclass(frozen=True)
class EventDelivery:
    """One thin event as Stripe POSTs it to an Event Destination: ``body`` exactly as sent
    (JSON text), signed at ``signed_at`` with every one of ``secrets`` (Stripe signs with
    each active secret while one is being rotated)."""

    id: str
    type: str
    body: str
    signed_at: int
    secrets: tuple[str, ...]

    @property
    def signature(self) -> str:
        """The ``Stripe-Signature`` header Stripe sends."""
        return signature_header(self.body, self.secrets, self.signed_at)

    @property
    def headers(self) -> dict[str, str]:
        """The request headers that matter to a receiver."""
        return {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": self.signature,
        }

    def signed(self, timestamp: int, secrets: Sequence[str] | None = None) -> str:
        """A ``Stripe-Signature`` header for this body signed at another time (a replay, a
        late retry) or with other secrets (a forgery)."""
        return signature_header(self.body, tuple(secrets or self.secrets), timestamp)

    def as_dict(self) -> JSON:
        """What ``POST /_fake/meter_error_events`` answers for it."""
        return {
            "id": self.id,
            "type": self.type,
            "body": self.body,
            "signed_at": self.signed_at,
            "signature": self.signature,
        }


def signature_header(body: str, secrets: Sequence[str], timestamp: int) -> str:
    """``t=<timestamp>,v1=<HMAC-SHA256 of "<timestamp>.<body>">`` with one ``v1`` per secret,
    as Stripe signs webhook requests."""
    if not secrets:
        raise ValueError("give at least one signing secret ('whsec_...')")
    signed = f"{timestamp}.{body}".encode()
    digests = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join([f"t={timestamp}", *(f"v1={digest}" for digest in digests)])


def deliver_errors(
    state: State, secrets: str | Sequence[str], *, max_samples: int | None = None
) -> list[EventDelivery]:
    """The error reports filed since the last call as events (see :func:`report_errors`),
    each as the thin event a destination receives, signed now with ``secrets``."""
    chosen = (secrets,) if isinstance(secrets, str) else tuple(secrets)
    if not chosen or not all(isinstance(s, str) and s for s in chosen):
        raise ValueError("give the destination's signing secret ('whsec_...'), or several")
    if max_samples is not None and (
        isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1
    ):
        raise ValueError("max_samples must be a whole number greater than 0, or None for all")
    with state.lock:
        reported = report_errors(state, max_samples=max_samples)
    signed_at = int(state.clock.now())
    return [EventDelivery(e["id"], e["type"], thin(e), signed_at, chosen) for e in reported]


def report_errors(state: State, *, max_samples: int | None = None) -> list[JSON]:
    """Turn the error reports filed since the last call into full events (kept for
    ``GET /v2/core/events/{id}``), one per meter with refused events and one for events no
    meter counts; returns them in the order their meters first had an error.

    ``max_samples`` caps the sample errors per error code, as Stripe's reports carry samples
    rather than every refused event (None: name them all)."""
    new = state.error_reports[state.error_reports_emitted :]
    state.error_reports_emitted = len(state.error_reports)
    by_meter: defaultdict[str | None, list[JSON]] = defaultdict(list)
    for report in new:
        by_meter[report.get("meter")].append(report)
    now = state.clock.now()
    events = [_event(meter, reports, now, max_samples) for meter, reports in by_meter.items()]
    for event in events:
        state.v2_events[event["id"]] = event
    return events


def thin(event: JSON) -> str:
    """The thin event a destination receives for ``event``: everything but ``data``."""
    return json.dumps({key: value for key, value in event.items() if key != "data"})


def retrieve(state: State, event_id: str) -> JSON:
    """GET /v2/core/events/{id}: the full event, for 30 days."""
    event = state.v2_events.get(event_id)
    if event is None or _age(state, event) > EVENT_RETENTION:
        raise no_such("event", event_id)
    return event


def meter_of(state: State, event_name: str) -> str | None:
    """The meter an event named ``event_name`` is reported under: the active one, else the
    latest deactivated one, else None (no meter counts that name)."""
    active = state.active_meters.get(event_name)
    if active is not None:
        return active
    archived = [m["id"] for m in state.meters.values() if m["event_name"] == event_name]
    return archived[-1] if archived else None


def _event(meter: str | None, reports: list[JSON], now: float, max_samples: int | None) -> JSON:
    """A v2 event reporting ``reports`` (all about ``meter``, or about no meter)."""
    by_code: defaultdict[str, list[JSON]] = defaultdict(list)
    for report in reports:
        by_code[str(report["code"])].append(report)
    count = len(reports)
    related = (
        None
        if meter is None
        else {"id": meter, "type": "billing.meter", "url": f"/v1/billing/meters/{meter}"}
    )
    return {
        "id": objects.new_id("evt_test"),
        "object": "v2.core.event",
        "context": None,
        "created": objects.iso(now),
        "data": {
            "developer_message_summary": (
                "There is 1 invalid event" if count == 1 else f"There are {count} invalid events"
            ),
            "reason": {
                "error_count": count,
                "error_types": [
                    {
                        "code": code,
                        "error_count": len(same),
                        "sample_errors": [
                            {
                                "error_message": r["message"],
                                "request": {"identifier": r["identifier"]},
                            }
                            for r in same[:max_samples]
                        ],
                    }
                    for code, same in by_code.items()
                ],
            },
            "validation_end": objects.iso(min(max(r["time"] for r in reports) + 1, now)),
            "validation_start": objects.iso(min(r["time"] for r in reports)),
        },
        "livemode": False,
        "reason": None,
        "related_object": related,
        "type": NO_METER_FOUND if meter is None else ERROR_REPORT_TRIGGERED,
    }


def _age(state: State, event: JSON) -> float:
    """Seconds since ``event`` was created, by the fake's clock."""
    return state.clock.now() - datetime.fromisoformat(event["created"]).timestamp()
