"""The ledger's Retry action: failed rows go back to pending, aggregated rows only as a whole
(delivered over HTTP to the fake Stripe), rows that can't succeed are refused saying what to
do instead, and a selection of any size is handled in bounded steps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import DeliveryGroup, Metric, UsageEvent
from tests.admin.conftest import ago
from tests.factories import MetricFactory, UsageEventFactory

pytestmark = pytest.mark.django_db
LIST = "admin:billflow_usage_usageevent_changelist"


def retry(client, events: list[UsageEvent]):
    return client.post(
        reverse(LIST),
        {"action": "retry_failed", "_selected_action": [str(e.pk) for e in events]},
        follow=True,
    )


def retry_everything(client):
    """The action on "select all N" across every page of the list (the page's own boxes are
    ticked too)."""
    page = UsageEvent.objects.order_by("-pk").values_list("pk", flat=True)[:100]
    return client.post(
        reverse(LIST),
        {"action": "retry_failed", "select_across": "1", "_selected_action": list(page)},
        follow=True,
    )


def status(event: UsageEvent) -> str:
    event.refresh_from_db()
    return event.status


def test_an_aggregated_group_is_retried_only_as_a_whole(client, editor, account, settings):
    """Retrying part of a group would send the whole group's value: it is refused, naming the
    group to search for; the whole group is retried and reaches Stripe once."""
    settings.BILLFLOW_USAGE = {**settings.BILLFLOW_USAGE, "AGGREGATION_WINDOW": 60}
    MetricFactory(key="signups", event_name="signups")  # no meter in Stripe yet
    window = timezone.now().timestamp() // 60 * 60 - 300
    at = datetime.fromtimestamp(window + 1, tz=UTC)
    rows = [
        billflow_usage.record_usage("signups", account.customer, value, timestamp=at)
        for value in (1, 2)
    ]
    deliver_pending()
    for row in rows:
        row.refresh_from_db()
    group = rows[0].group
    assert group is not None
    assert [(r.status, r.last_error_code, r.group_id) for r in rows] == [
        ("failed", "no_meter", group.pk)
    ] * 2
    client.force_login(editor)

    partly = retry(client, rows[:1])

    assert [status(row) for row in rows] == ["failed", "failed"]
    assert "0 failed event(s) queued" in partly.text
    assert f"search the ledger for {group.identifier} and select all its rows" in partly.text

    account.fake.create_meter("signups")  # the cause, fixed
    whole = retry(client, rows)
    deliver_pending()

    assert "2 failed event(s) queued" in whole.text
    assert [status(row) for row in rows] == ["sent", "sent"]
    assert account.fake.meter_event_total("signups", account.customer) == 3
    assert [e["identifier"] for e in account.fake.meter_events("signups")] == [group.identifier]


def test_tracker_errors_are_refused_saying_to_record_them_again(client, editor, metric):
    """A tracker error never reached the ledger as billable usage (its customer may be
    cus_unresolved); its message says to record it again, so retrying it too would bill it
    twice."""
    broken = UsageEventFactory(metric=metric, tracker_error=True)
    failed = UsageEventFactory(metric=metric, failed=True)
    client.force_login(editor)

    response = retry(client, [broken, failed])

    assert (status(broken), status(failed)) == ("failed", "pending")
    assert "1 failed event(s) queued" in response.text
    assert "1 event(s) failed in their tracker (tracker_error, unknown_metric)" in response.text
    assert "record each one with record_usage(), as its error message says" in response.text
    assert not LogEntry.objects.filter(object_id=str(broken.pk)).exists()


def test_rows_too_old_for_stripe_are_refused_with_invoice_item_advice(client, editor, metric):
    marked = UsageEventFactory(
        metric=metric,
        failed=True,
        occurred_at=ago(days=40),
        last_error_code="timestamp_too_far_in_past",
    )
    aged = UsageEventFactory(metric=metric, failed=True, occurred_at=ago(days=36))
    group = DeliveryGroup.objects.create(
        identifier="bfug_aged",
        metric=metric,
        customer_id="cus_Aged",
        value=2,
        occurred_at=ago(days=36),
    )
    aggregated = UsageEventFactory.create_batch(
        2, metric=metric, failed=True, group=group, occurred_at=ago(days=36)
    )
    client.force_login(editor)

    response = retry(client, [marked, aged, *aggregated])

    assert [status(row) for row in (marked, aged, *aggregated)] == ["failed"] * 4
    assert "0 failed event(s) queued" in response.text
    assert "4 event(s) are more than 35 days old" in response.text
    assert "invoice item or a credit note" in response.text


def failed_rows(metric: Metric, count: int) -> None:
    UsageEvent.objects.bulk_create(UsageEventFactory.build_batch(count, metric=metric, failed=True))


def test_a_selection_across_all_pages_is_capped_and_never_loaded_whole(client, editor, metric):
    """ "Select all" of a large ledger: at most 1,000 rows are retried, the rest are counted
    and left for another run, and the work does not grow with the selection."""
    failed_rows(metric, 1005)
    client.force_login(editor)

    with CaptureQueriesContext(connection) as first:
        response = retry_everything(client)

    assert UsageEvent.objects.filter(status="pending").count() == 1000
    assert "1000 failed event(s) queued" in response.text
    assert "5 other failed event(s) were left for another run" in response.text
    assert LogEntry.objects.filter(user=editor).count() == 1000

    UsageEvent.objects.update(status="failed")
    failed_rows(metric, 2000)
    with CaptureQueriesContext(connection) as larger:
        response = retry_everything(client)

    assert "2005 other failed event(s) were left for another run" in response.text
    assert len(larger) == len(first)
