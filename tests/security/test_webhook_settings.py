"""METER_WEBHOOK_TOLERANCE: a system check reports a bad value, and the view fails closed
on one rather than accepting replays."""

from __future__ import annotations

from typing import Any

import pytest

from billflow_usage.checks import check_settings
from billflow_usage.conf import DEFAULTS
from billflow_usage.models import UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.security.webhook_scene import Scene

BASE = {"BACKEND": "billflow_usage.backends.locmem.LocMemBackend"}


def test_the_default_is_stripes_300_seconds(settings: Any) -> None:
    settings.BILLFLOW_USAGE = BASE
    assert DEFAULTS["METER_WEBHOOK_TOLERANCE"] == 300
    assert check_settings() == []


@pytest.mark.parametrize("value", [0, -5, "300", True, None, float("nan")])
def test_a_tolerance_that_is_not_a_positive_number_is_reported(settings: Any, value: Any) -> None:
    settings.BILLFLOW_USAGE = {**BASE, "METER_WEBHOOK_TOLERANCE": value}

    (error,) = check_settings()

    assert error.id == "billflow_usage.E005"
    assert "METER_WEBHOOK_TOLERANCE" in error.msg
    assert "seconds greater than 0" in (error.hint or "")


@pytest.mark.django_db
@pytest.mark.urls("tests.reconcile.urls")
def test_the_view_fails_closed_on_a_bad_tolerance(
    settings: Any, fake_stripe: FakeStripe, django_assert_num_queries: Any
) -> None:
    scene = Scene.build(settings, fake_stripe, METER_WEBHOOK_TOLERANCE=0)
    row = scene.refused_row()
    delivery = scene.report()

    with django_assert_num_queries(0):
        response = scene.post(delivery)

    assert response.status_code == 503
    assert "METER_WEBHOOK_TOLERANCE" in response.content.decode()
    assert scene.event_fetches() == 0
    row.refresh_from_db()
    assert row.status == UsageEvent.Status.SENT
