"""Every bad input of :data:`tests.faults.bad_inputs.CASES` gets its clear error, and nothing
already recorded (metrics, usage rows, seat links, delivery groups) is lost or changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models
from django.test import Client

from billflow_usage.models import DeliveryGroup, Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from billflow_usage.tracking.registry import TrackerRegistry
from tests.delivery.conftest import Configure
from tests.faults.bad_inputs import (
    CASES,
    REVOKED_KEY,
    BadInput,
    FormError,
    Marked,
    Raises,
    Refused,
    Reported,
)
from tests.faults.scene import Scene, build_scene

pytestmark = pytest.mark.django_db

Key = tuple[str, int]
RECORDED: list[type[models.Model]] = [Metric, UsageEvent, SubscriptionItemLink, DeliveryGroup]
#: What one delivery attempt writes on a row; everything else is what was recorded.
DELIVERY_STATE = {
    UsageEvent: {
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_until",
        "claim_token",
        "last_error_code",
        "last_error_message",
        "sent_at",
        "group_id",
    },
    SubscriptionItemLink: {
        "synced_quantity",
        "synced_version",
        "synced_at",
        "push_after",
        "push_attempts",
        "last_error_code",
        "last_error_message",
    },
}


@pytest.fixture
def scene(
    fake_stripe: FakeStripe,
    settings: Any,
    configure: Configure,
    admin_client: Client,
    default_registry: TrackerRegistry,
) -> Scene:
    return build_scene(fake_stripe, settings, configure, admin_client)


def snapshot() -> dict[Key, dict[str, Any]]:
    return {
        (model._meta.label, row["id"]): row
        for model in RECORDED
        for row in model.objects.values()  # type: ignore[attr-defined]
    }


def key_of(row: UsageEvent | SubscriptionItemLink) -> Key:
    return (row._meta.label, row.pk)


def state_of(row: UsageEvent | SubscriptionItemLink) -> str:
    if isinstance(row, SubscriptionItemLink):
        return "in sync" if row.quantity_in_sync else "push pending"
    return row.status


def assert_kept(before: dict[Key, dict[str, Any]], target: Key | None = None) -> None:
    """Every row recorded before is still there and unchanged, save what delivery writes on
    ``target`` (which may be new)."""
    after = snapshot()
    assert set(after) - set(before) <= {target}
    for key, row in before.items():
        assert key in after, f"{key} was lost"
        model = next(m for m in RECORDED if m._meta.label == key[0])
        ignored = DELIVERY_STATE.get(model, set()) if key == target else set()
        kept = {name: value for name, value in after[key].items() if name not in ignored}
        assert kept == {name: value for name, value in row.items() if name not in ignored}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_bad_input_gets_a_clear_error_and_loses_nothing(scene: Scene, case: BadInput) -> None:
    if case.prepare is not None:
        scene.under_test = case.prepare(scene)
    before = snapshot()

    match case.expected:
        case Raises(error, fragment):
            with pytest.raises(error) as raised:
                case.attempt(scene)
            assert fragment in str(raised.value)
            assert_kept(before)
        case Reported(check_id, fragment):
            messages = case.attempt(scene)
            found = [m for m in messages if m.id == check_id and fragment in m.msg]
            assert found, messages
            assert all(message.hint for message in found)
            assert_kept(before)
        case FormError(fragment):
            errors = case.attempt(scene)
            assert any(fragment in error for error in errors), errors
            assert_kept(before)
        case Refused(fragment):
            shown = case.attempt(scene)
            assert any(fragment in message for message in shown), shown
            assert_kept(before)
        case Marked(state, code, fragment, _):
            row = case.attempt(scene)
            assert (state_of(row), row.last_error_code) == (state, code)
            assert fragment in row.last_error_message
            for secret in (REVOKED_KEY, FAKE_STRIPE_API_KEY):
                assert secret not in row.last_error_message
            assert_kept(before, key_of(row))


def test_there_are_at_least_20_cases_with_unique_ids() -> None:
    assert len({case.id for case in CASES}) == len(CASES) >= 20
