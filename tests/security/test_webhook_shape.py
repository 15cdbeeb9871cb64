"""Signed bodies of the wrong shape: a 400 that says what is wrong, before any database or
Stripe work (never a 500 from deep inside the marking)."""

from __future__ import annotations

from typing import Any

import pytest

from billflow_usage.models import ProcessedMeterErrorEvent, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.reconcile.backends import EventsBackend
from tests.security.webhook_scene import Scene, signed_body

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.reconcile.urls")]

TYPE = "v1.billing.meter.error_report_triggered"
THIN = {
    "id": "evt_test_shape",
    "object": "v2.core.event",
    "type": TYPE,
    "created": "2026-06-15T11:59:00.000Z",
    "livemode": False,
    "context": None,
    "reason": None,
    "related_object": {"id": "mtr_1", "type": "billing.meter", "url": "/v1/billing/meters/mtr_1"},
}


def full(**data: Any) -> dict[str, Any]:
    reason = {
        "error_count": 1,
        "error_types": [
            {
                "code": "meter_event_customer_not_found",
                "error_count": 1,
                "sample_errors": [
                    {"error_message": "No such customer", "request": {"identifier": "x"}}
                ],
            }
        ],
    }
    return {**THIN, "data": {"developer_message_summary": "1", "reason": reason, **data}}


@pytest.fixture
def scene(settings: Any, fake_stripe: FakeStripe) -> Scene:
    return Scene.build(settings, fake_stripe)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ("[1, 2]", "the body must be a JSON object"),
        ("not json", "the body is not JSON"),
        ({**THIN, "id": 5}, "id must be an event ID 'evt_...'"),
        ({**THIN, "id": "cus_1"}, "id must be an event ID 'evt_...'"),
        ({**THIN, "id": "evt_" + "a" * 300}, "id must be an event ID 'evt_...'"),
        ({k: v for k, v in THIN.items() if k != "type"}, "type must be a string"),
        ({**THIN, "created": 1781524800}, "created must be an ISO 8601 date-time"),
        ({**THIN, "created": "yesterday"}, "created must be an ISO 8601 date-time"),
        ({**THIN, "created": "2026-06-15T11:59:00"}, "created must be an ISO 8601 date-time"),
        ({**THIN, "data": 5}, "data must be an object"),
        (full(reason=[]), "data.reason must be an object"),
        (full(reason={"error_types": 5}), "data.reason.error_types must be a list"),
        (full(reason={"error_types": [5]}), "data.reason.error_types[0] must be an object"),
        (
            full(reason={"error_types": [{"code": 7, "sample_errors": []}]}),
            "data.reason.error_types[0].code must be a string",
        ),
        (
            full(reason={"error_types": [{"code": "x", "sample_errors": {}}]}),
            "data.reason.error_types[0].sample_errors must be a list",
        ),
        (
            full(reason={"error_types": [{"code": "x", "sample_errors": [{"request": 1}]}]}),
            "data.reason.error_types[0].sample_errors[0].request must be an object",
        ),
        (
            full(
                reason={
                    "error_types": [
                        {"code": "x", "sample_errors": [{"request": {"identifier": ["a"]}}]}
                    ]
                }
            ),
            "data.reason.error_types[0].sample_errors[0].request.identifier must be a string",
        ),
        (
            full(
                reason={
                    "error_types": [
                        {
                            "code": "x",
                            "sample_errors": [
                                {"error_message": {}, "request": {"identifier": "a"}}
                            ],
                        }
                    ]
                }
            ),
            "data.reason.error_types[0].sample_errors[0].error_message must be a string",
        ),
    ],
)
def test_a_signed_body_of_the_wrong_shape_is_a_400_before_any_work(
    scene: Scene, django_assert_num_queries: Any, payload: Any, problem: str
) -> None:
    row = scene.refused_row()
    body, signature = signed_body(payload)

    with django_assert_num_queries(0):
        response = scene.post(body, signature)

    assert response.status_code == 400
    assert problem in response.content.decode()
    assert scene.event_fetches() == 0
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.SENT


def test_other_event_types_are_acknowledged_and_ignored(
    scene: Scene, django_assert_num_queries: Any
) -> None:
    other = {**THIN, "type": "v2.core.event_destination.ping", "data": {"reason": []}}
    body, signature = signed_body(other)

    with django_assert_num_queries(0):
        response = scene.post(body, signature)

    assert (response.status_code, response.json()) == (200, {"marked": 0, "ignored": True})
    assert scene.event_fetches() == 0


def test_an_event_stripe_returns_in_the_wrong_shape_is_a_502(
    scene: Scene, django_assert_num_queries: Any
) -> None:
    """Nothing is recorded, so Stripe's next delivery tries again."""
    scene.configure(BACKEND="tests.reconcile.backends.EventsBackend")
    EventsBackend.events = {THIN["id"]: full(reason={"error_types": 5})}
    body, signature = signed_body(THIN)

    with django_assert_num_queries(1):  # the lookup of the event ID
        response = scene.post(body, signature)

    assert response.status_code == 502
    assert "data.reason.error_types must be a list" in response.content.decode()
    assert not ProcessedMeterErrorEvent.objects.exists()
