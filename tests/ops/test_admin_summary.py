"""The admin index shows billflow_status's summary to those who may view the ledger."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.test import Client

from billflow_usage.admin.index import INDEX_TEMPLATE, show_health_on_index
from tests.factories import UsageEventFactory

pytestmark = pytest.mark.django_db


def index(client: Client) -> str:
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_index_shows_the_summary(admin_client: Client) -> None:
    UsageEventFactory(last_error_code="credentials_rejected")
    UsageEventFactory(failed=True, last_error_code="no_meter")
    page = index(admin_client)
    assert 'id="billflow-usage-health"' in page
    assert "Usage billing: broken" in page
    assert "no_meter 1" in page
    assert "Stripe refuses our key (credentials_rejected)" in page
    assert "Site administration" in page  # the app list is still there
    assert page.index("billflow-usage-health") < page.index("app-billflow_usage")


def test_a_healthy_ledger(admin_client: Client) -> None:
    UsageEventFactory(sent=True)
    page = index(admin_client)
    assert "Usage billing: healthy" in page
    assert "none yet" in page  # no billflow_sync run


def test_staff_without_the_view_permission_see_no_summary(client: Client) -> None:
    user = User.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(user)
    assert "billflow-usage-health" not in index(client)
    user.user_permissions.add(Permission.objects.get(codename="view_usageevent"))
    client.force_login(User.objects.get(pk=user.pk))
    assert "Usage billing: healthy" in index(client)


def test_a_project_index_template_is_left_alone() -> None:
    site = admin.AdminSite(name="custom")
    site.index_template = "myproject/index.html"
    show_health_on_index(site)
    assert site.index_template == "myproject/index.html"
    assert admin.site.index_template == INDEX_TEMPLATE
