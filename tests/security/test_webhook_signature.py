"""What the signature check keeps doing: it fails closed without a secret, compares in
constant time, takes any of several v1 signatures (one per secret while Stripe rotates
one), and a forged request costs nothing and leaves no secret or body in the logs."""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

import pytest

from billflow_usage.models import UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.security.webhook_scene import SECRET, Scene

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.reconcile.urls")]


@pytest.fixture
def scene(settings: Any, fake_stripe: FakeStripe) -> Scene:
    return Scene.build(settings, fake_stripe)


def test_without_a_secret_nothing_is_accepted(scene: Scene, django_assert_num_queries: Any) -> None:
    row = scene.refused_row()
    delivery = scene.report()
    scene.configure(METER_WEBHOOK_SECRET=None)

    with django_assert_num_queries(0):
        response = scene.post(delivery)

    assert response.status_code == 503
    assert "METER_WEBHOOK_SECRET" in response.content.decode()
    assert scene.event_fetches() == 0
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.SENT


def test_a_forged_request_costs_nothing_and_logs_no_secret(
    scene: Scene, django_assert_num_queries: Any, caplog: pytest.LogCaptureFixture
) -> None:
    row = scene.refused_row()
    delivery = scene.report()
    forged = delivery.signed(int(time.time()), ["whsec_guessed"])

    with caplog.at_level(logging.WARNING, "billflow_usage"), django_assert_num_queries(0):
        response = scene.post(delivery, forged)
        unsigned = scene.post(delivery, "")

    assert (response.status_code, unsigned.status_code) == (400, 400)
    assert scene.event_fetches() == 0
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.SENT
    refusals = [r for r in caplog.records if "meter error webhook" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.WARNING, logging.WARNING]
    logged = caplog.text
    for secret in (SECRET, forged, delivery.body, delivery.id, row.identifier):
        assert secret not in logged


def test_any_of_several_v1_signatures_is_enough(scene: Scene) -> None:
    """During a rotation Stripe signs with the old and the new secret."""
    row = scene.refused_row()
    (delivery,) = scene.fake.emit_meter_error_events(["whsec_the_other_one", SECRET])

    assert scene.post(delivery).json() == {"marked": 1}
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.FAILED


def test_signatures_are_compared_in_constant_time(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene.refused_row()
    delivery = scene.report()
    compared: list[tuple[str, str]] = []
    compare_digest = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)

    assert scene.post(delivery, delivery.signed(int(time.time()), ["whsec_a"])).status_code == 400
    assert compared
    assert all(len(a) == len(b) == 64 for a, b in compared)
