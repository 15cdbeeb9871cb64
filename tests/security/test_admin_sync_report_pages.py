"""The admin's report page shows a page of one list's entries at a time, escaped, never the
whole stored JSON; the list of reports never loads the reports themselves."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billflow_usage.admin.sync_reports import ENTRIES_PER_PAGE
from billflow_usage.models import SyncReport
from tests.admin.conftest import staff_with

pytestmark = pytest.mark.django_db

ENTRIES = 2 * ENTRIES_PER_PAGE + 7


@pytest.fixture
def reader(client):
    user = staff_with("view_syncreport")
    client.force_login(user)
    return client


@pytest.fixture
def big_report():
    """A report as rows stored before the cap could be: thousands of entries."""
    metered = [
        {
            "customer_id": f"cus_M{n:05d}",
            "metric": "api_calls",
            "status": "mismatch",
            "detail": "<script>alert('x')</script>" if n == 0 else f"detail {n}",
        }
        for n in range(ENTRIES)
    ]
    return SyncReport.objects.create(
        started_at=timezone.now(),
        finished_at=timezone.now(),
        mode=SyncReport.Mode.CHECK,
        status=SyncReport.Status.COMPLETED,
        summary={"metered_checked": ENTRIES, "metered_drift": ENTRIES},
        report={
            "schema_version": 1,
            "metered": metered,
            "unbilled": [{"customer_id": "cus_Unbilled1", "metric": "api_calls"}],
            "errors": [],
            "left_out": {"metered": 12},
        },
        changes=[{"kind": "metered", "customer_id": f"cus_C{n:05d}"} for n in range(3)],
        drift_remaining=ENTRIES,
    )


def page(client, report, **params):
    url = reverse("admin:billflow_usage_syncreport_change", args=[report.pk])
    response = client.get(url, params)
    assert response.status_code == 200
    return response.text


def test_the_first_page_of_the_first_list_is_shown(reader, big_report):
    text = page(reader, big_report)
    shown = [n for n in range(ENTRIES) if f"cus_M{n:05d}" in text]
    assert shown == list(range(ENTRIES_PER_PAGE))
    assert "12 more not kept" in text
    assert "section=unbilled" in text
    assert "section=changes" in text
    assert "page=2" in text
    assert "&quot;metered_drift&quot;: " in text  # the summary is still shown whole


def test_later_pages_and_other_lists(reader, big_report):
    last = page(reader, big_report, section="metered", page=3)
    assert [n for n in range(ENTRIES) if f"cus_M{n:05d}" in last] == list(
        range(2 * ENTRIES_PER_PAGE, ENTRIES)
    )
    changes = page(reader, big_report, section="changes")
    assert "cus_C00002" in changes
    assert "cus_M00000" not in changes
    unbilled = page(reader, big_report, section="unbilled")
    assert "cus_Unbilled1" in unbilled


@pytest.mark.parametrize(
    "params",
    [{"page": "9999"}, {"page": "-1"}, {"page": "x"}, {"section": "nope"}, {"section": "summary"}],
)
def test_odd_parameters_show_a_page_anyway(reader, big_report, params):
    assert "cus_M" in page(reader, big_report, **params)


def test_entries_are_escaped(reader, big_report):
    text = page(reader, big_report)
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text


def test_the_list_of_reports_does_not_load_them(reader, big_report):
    with CaptureQueriesContext(connection) as queries:
        response = reader.get(reverse("admin:billflow_usage_syncreport_changelist"))
    assert response.status_code == 200
    selects = [q["sql"] for q in queries if "billflow_usage_syncreport" in q["sql"]]
    assert selects
    assert not [sql for sql in selects if '"report"' in sql or '"changes"' in sql]


def test_still_read_only_and_behind_the_view_permission(client, big_report):
    user = staff_with("view_usageevent")
    client.force_login(user)
    url = reverse("admin:billflow_usage_syncreport_change", args=[big_report.pk])
    assert client.get(url).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_syncreport"))
    assert client.post(url, {"mode": "apply"}).status_code == 403
    big_report.refresh_from_db()
    assert big_report.mode == SyncReport.Mode.CHECK
