"""The ledger's Cancel action: pending rows here, sent rows in Stripe (the fake, over HTTP)
within its 24 h window, aggregated rows only as a whole, everything else refused saying why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import UsageEvent
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from tests.admin.conftest import Account, ago
from tests.factories import UsageEventFactory

pytestmark = pytest.mark.django_db
ADJUSTMENTS = "/v1/billing/meter_event_adjustments"


def cancel(client, events):
    return client.post(
        reverse("admin:billflow_usage_usageevent_changelist"),
        {"action": "cancel_events", "_selected_action": [str(e.pk) for e in events]},
        follow=True,
    )


def sent(account: Account, *values: int, at: datetime | None = None) -> list[UsageEvent]:
    rows = [
        billflow_usage.record_usage("api_calls", account.customer, value, timestamp=at)
        for value in values
    ]
    deliver_pending()
    for row in rows:
        row.refresh_from_db()
        assert row.status == UsageEvent.Status.SENT
    return rows


def status(event: UsageEvent) -> str:
    event.refresh_from_db()
    return event.status


def test_pending_cancelled_here_unless_a_worker_holds_it(client, editor, metric) -> None:
    pending = UsageEventFactory(metric=metric, pending=True)
    claimed = UsageEventFactory(metric=metric, claimed=True)
    client.force_login(editor)

    response = cancel(client, [pending, claimed])

    assert "1 event(s) cancelled." in response.text
    assert "1 pending event(s) are being sent right now" in response.text
    assert (status(pending), status(claimed)) == ("cancelled", "pending")
    [entry] = LogEntry.objects.filter(object_id=str(pending.pk), user=editor)
    assert "Cancelled before it was sent." in entry.get_change_message()


def test_pending_that_may_have_reached_stripe_is_left_to_be_sent(client, editor, metric) -> None:
    """An attempt whose answer was lost, a worker that died after Stripe answered: cancelled
    here, Stripe would bill what the ledger says cancelled. Found by the model-based test."""
    lost_answer = UsageEventFactory(metric=metric, pending=True, attempts=1)
    dead_worker = UsageEventFactory(metric=metric, pending=True, claimed_until=ago(minutes=1))
    client.force_login(editor)

    response = cancel(client, [lost_answer, dead_worker])

    assert "2 pending event(s) may have reached Stripe already" in response.text
    assert (status(lost_answer), status(dead_worker)) == ("pending", "pending")


def test_recently_sent_cancelled_in_stripe_then_in_the_ledger(client, editor, account) -> None:
    [row, kept] = sent(account, 5, 2)
    client.force_login(editor)

    response = cancel(client, [row])

    assert "1 event(s) cancelled." in response.text
    assert account.fake.meter_event_total("api_calls", account.customer) == 2
    assert account.fake.request_count(ADJUSTMENTS, "POST") == 1
    row.refresh_from_db()
    assert (row.status, row.last_error_code) == ("cancelled", "cancelled_by_admin")
    assert status(kept) == "sent"
    [entry] = LogEntry.objects.filter(object_id=str(row.pk), user=editor)
    assert f"Cancelled in Stripe ({row.identifier})." in entry.get_change_message()


def test_older_than_24_hours_refused_with_credit_note_advice(client, editor, account) -> None:
    [row] = sent(account, 5)
    UsageEvent.objects.filter(pk=row.pk).update(sent_at=ago(hours=25))
    client.force_login(editor)

    response = cancel(client, [row])

    assert "0 event(s) cancelled." in response.text
    assert "more than 24 hours ago" in response.text
    assert "credit note" in response.text
    assert account.fake.request_count(ADJUSTMENTS) == 0
    assert status(row) == "sent"


def test_marked_cancelled_only_when_stripe_confirms(client, editor, account) -> None:
    [row] = sent(account, 5)
    account.fake.clock.advance(25 * 3600)  # Stripe's own window has closed meanwhile
    client.force_login(editor)

    response = cancel(client, [row])

    assert f"Stripe did not cancel {row.identifier}" in response.text
    assert "only be cancelled within 24 hours" in response.text
    assert status(row) == "sent"
    assert not LogEntry.objects.filter(object_id=str(row.pk)).exists()


def test_stripe_down_leaves_rows_sent(client, editor, account) -> None:
    rows = sent(account, 5, 6)
    account.fake.faults.add("outage")
    client.force_login(editor)

    response = cancel(client, rows)

    assert response.status_code == 200
    assert "Stripe could not be reached" in response.text
    assert "2 sent event(s) were not cancelled: try again shortly" in response.text
    assert [status(row) for row in rows] == ["sent", "sent"]


def test_a_rejected_key_says_so_and_leaves_rows_sent(client, editor, account) -> None:
    rows = sent(account, 5, 6)
    account.fake.keys.revoke(FAKE_STRIPE_API_KEY)
    client.force_login(editor)

    response = cancel(client, rows)

    assert "Stripe rejected the API key" in response.text
    assert "2 sent event(s) were not cancelled: try again once the key works" in response.text
    assert FAKE_STRIPE_API_KEY not in response.text
    assert [status(row) for row in rows] == ["sent", "sent"]


def test_backend_that_cannot_cancel_says_so(client, editor, account, settings) -> None:
    [row] = sent(account, 5)
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "METER_API": "legacy"}
    client.force_login(editor)

    response = cancel(client, [row])

    assert "Legacy usage records cannot be cancelled" in response.text
    assert status(row) == "sent"


def test_aggregated_rows_are_cancelled_only_as_a_whole(client, editor, account, settings) -> None:
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "AGGREGATION_WINDOW": 60}
    window = timezone.now().timestamp() // 60 * 60 - 300
    rows = sent(account, 1, 2, 3, at=datetime.fromtimestamp(window + 1, tz=UTC))
    group = rows[0].group
    assert group is not None
    assert {row.group_id for row in rows} == {group.pk}
    client.force_login(editor)

    partly = cancel(client, rows[:2])

    assert f"search the ledger for {group.identifier}" in partly.text
    assert account.fake.request_count(ADJUSTMENTS) == 0
    found = client.get(
        reverse("admin:billflow_usage_usageevent_changelist"), {"q": group.identifier}
    )
    assert all(row.identifier in found.text for row in rows)

    whole = cancel(client, rows)

    assert "3 event(s) cancelled." in whole.text
    assert account.fake.request_count(ADJUSTMENTS, "POST") == 1
    assert account.fake.meter_event_total("api_calls", account.customer) == 0
    assert [status(row) for row in rows] == ["cancelled"] * 3


def test_failed_and_cancelled_rows_left_alone(client, editor, metric) -> None:
    failed = UsageEventFactory(metric=metric, failed=True)
    done = UsageEventFactory(metric=metric, cancelled=True)
    client.force_login(editor)

    response = cancel(client, [failed, done])

    assert "2 event(s) were failed or already cancelled." in response.text
    assert (status(failed), status(done)) == ("failed", "cancelled")


def test_viewer_cannot_cancel(client, viewer, account) -> None:
    [row] = sent(account, 5)
    client.force_login(viewer)

    cancel(client, [row])

    assert status(row) == "sent"
    assert account.fake.request_count(ADJUSTMENTS) == 0
