"""The ledger in the admin: read-only, searchable, fast, with retry and cancel actions."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billflow_usage.models import UsageEvent
from tests.factories import OrderFactory, UsageEventFactory

pytestmark = pytest.mark.django_db
LIST = "admin:billflow_usage_usageevent_changelist"


def act(client, action, events):
    return client.post(
        reverse(LIST),
        {"action": action, "_selected_action": [str(e.pk) for e in events]},
        follow=True,
    )


def test_list_search_and_filters(client, viewer, metric):
    UsageEventFactory(metric=metric, customer_id="cus_Find", identifier="needle")
    UsageEventFactory(metric=metric, customer_id="cus_Other")
    client.force_login(viewer)
    assert "cus_Other" not in client.get(reverse(LIST), {"q": "cus_Find"}).text
    assert "needle" in client.get(reverse(LIST), {"q": "needle"}).text
    assert client.get(reverse(LIST), {"status__exact": "failed"}).status_code == 200


def test_query_count_does_not_grow_with_rows(client, viewer, metric):
    client.force_login(viewer)
    UsageEventFactory.create_batch(3, metric=metric, source=OrderFactory())
    with CaptureQueriesContext(connection) as few:
        client.get(reverse(LIST))
    UsageEventFactory.create_batch(30, metric=metric, source=OrderFactory())
    with CaptureQueriesContext(connection) as many:
        client.get(reverse(LIST))
    assert len(many) == len(few)


def test_change_page_is_read_only(client, editor, metric):
    event = UsageEventFactory(metric=metric, value=5)
    client.force_login(editor)
    url = reverse("admin:billflow_usage_usageevent_change", args=[event.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="value"' not in page.text
    client.post(url, {"value": 500})
    event.refresh_from_db()
    assert event.value == 5


def test_viewer_cannot_run_actions(client, viewer, metric):
    event = UsageEventFactory(metric=metric, failed=True, last_error_code="resource_missing")
    client.force_login(viewer)
    act(client, "retry_failed", [event])
    event.refresh_from_db()
    assert event.status == "failed"


def test_retry_failed(client, editor, metric):
    failed = UsageEventFactory(metric=metric, failed=True, attempts=12, last_error_code="x")
    sent = UsageEventFactory(metric=metric, sent=True)
    client.force_login(editor)
    response = act(client, "retry_failed", [failed, sent])
    assert "1 failed event(s) queued" in response.text
    assert "1 event(s) were not failed" in response.text
    failed.refresh_from_db()
    sent.refresh_from_db()
    assert (failed.status, failed.attempts) == ("pending", 12)
    assert sent.status == "sent"
    assert LogEntry.objects.filter(object_id=str(failed.pk), user=editor).exists()


def test_paginator_estimates_only_unfiltered_large_tables_on_postgresql(on_postgresql, metric):
    from django.db import connection

    from billflow_usage.admin.pagination import EstimatedCountPaginator

    UsageEventFactory.create_batch(3, metric=metric)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billflow_usage_usageevent")
    exact = EstimatedCountPaginator(UsageEvent.objects.order_by("pk"), 100)
    assert exact.count == 3  # below the threshold an exact count is cheap
    filtered = EstimatedCountPaginator(UsageEvent.objects.filter(value=1).order_by("pk"), 100)
    assert filtered.count == 3


def list_columns(page_text: str) -> list[str]:
    """The changelist's columns, in order, by the ``column-<name>`` class of their header."""
    return re.findall(r'<th scope="col" class="[^"]*column-(\w+)', page_text)


def test_the_list_reads_as_an_operator_reads_a_row(client, viewer, metric):
    UsageEventFactory(metric=metric, failed=True, last_error_code="resource_missing")
    client.force_login(viewer)

    columns = list_columns(client.get(reverse(LIST)).text)

    assert columns[:7] == [
        "occurred_at",
        "customer_link",
        "metric_key",
        "value",
        "status",
        "attempts",
        "error",
    ]
    assert "short_identifier" in columns


def test_the_identifier_is_shortened_in_the_list_and_whole_on_its_page(client, viewer, metric):
    identifier = "bfu_" + "0123456789abcdef" * 3 + "fedcba98765"
    event = UsageEventFactory(metric=metric, identifier=identifier)
    client.force_login(viewer)

    listed = client.get(reverse(LIST)).text
    assert f'<span title="{identifier}">{identifier[:13]}\u2026{identifier[-6:]}</span>' in listed
    assert f">{identifier}<" not in listed
    detail = client.get(reverse("admin:billflow_usage_usageevent_change", args=[event.pk])).text
    assert f">{identifier}<" in detail


def test_the_list_and_titles_name_the_metric_by_its_key(client, viewer, metric):
    event = UsageEventFactory(metric=metric, value=4, customer_id="cus_Keyed")
    client.force_login(viewer)

    listed = client.get(reverse(LIST)).text
    assert '<td class="field-metric_key">orders</td>' in listed
    detail = client.get(reverse("admin:billflow_usage_usageevent_change", args=[event.pk])).text
    assert f"{event.identifier}: 4 x orders for cus_Keyed" in detail
    assert f" x {metric.pk} for " not in detail


def test_a_long_error_is_shortened_with_the_whole_in_its_title(client, viewer, metric):
    message = "No such customer: 'cus_Gone'. " * 5
    UsageEventFactory(
        metric=metric, failed=True, last_error_code="resource_missing", last_error_message=message
    )
    client.force_login(viewer)

    listed = client.get(reverse(LIST)).text

    whole = f"resource_missing: {message}".rstrip(": ")
    assert f'<span title="{whole.replace(chr(39), "&#x27;")}">resource_missing: No such' in listed
