"""A v2 stream request's body: the events as a JSON array, and nearly free to form-encode.

stripe-python form-encodes every request's parameters before it sends a v2 request's as JSON
and drops the form; event by event that was over half the delivery worker's CPU
(docs/benchmarks.md, "The `v2` worker"). When a stripe-python upgrade encodes the events
again, the first test says so.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlencode

from stripe._encode import _api_encode

from billflow_usage.backends.base import MeterEvent
from billflow_usage.backends.stripe.stream import request_body

EVENTS = [
    MeterEvent(f"id-{n}", "api_calls", "cus_A", n, datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC))
    for n in range(100)
]


def test_the_events_cost_the_form_encoder_one_value() -> None:
    assert urlencode(list(_api_encode(request_body(EVENTS)))) == "events="


def test_the_json_body_is_the_events_as_stripe_documents_them() -> None:
    sent = json.loads(json.dumps(request_body(EVENTS[:2])))

    assert sent == {
        "events": [
            {
                "event_name": "api_calls",
                "identifier": f"id-{n}",
                "payload": {"stripe_customer_id": "cus_A", "value": str(n)},
                "timestamp": "2026-01-02T03:04:05.006Z",
            }
            for n in range(2)
        ]
    }
