import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from billflow_usage.models import SyncReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def report():
    return SyncReport.objects.create(
        started_at=timezone.now(),
        finished_at=timezone.now(),
        mode=SyncReport.Mode.CHECK,
        status=SyncReport.Status.COMPLETED,
        summary={"metered_checked": 4, "metered_drift": 1},
        report={"schema_version": 1, "metered": [{"customer_id": "cus_Drift"}]},
        drift_remaining=1,
    )


def test_reports_are_listed_and_readable_but_not_editable(client, viewer, report):
    viewer.user_permissions.add(Permission.objects.get(codename="view_syncreport"))
    client.force_login(viewer)
    listing = client.get(reverse("admin:billflow_usage_syncreport_changelist"))
    assert listing.status_code == 200
    page = client.get(reverse("admin:billflow_usage_syncreport_change", args=[report.pk]))
    assert "cus_Drift" in page.text
    assert "&quot;metered_drift&quot;: 1" in page.text
    client.post(
        reverse("admin:billflow_usage_syncreport_change", args=[report.pk]), {"mode": "apply"}
    )
    report.refresh_from_db()
    assert report.mode == SyncReport.Mode.CHECK


def test_staff_without_view_permission_cannot_see_reports(client, viewer, report):
    client.force_login(viewer)
    assert client.get(reverse("admin:billflow_usage_syncreport_changelist")).status_code == 403
