"""UsageAdminMixin in a host project's admin: the Usage column and button, the usage page in
the host's breadcrumbs, how an object's customer is found, and the system check."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import billflow_usage
from billflow_usage.admin import UsageAdminMixin
from tests.admin.conftest import staff_with
from tests.admin.host_site import WorkspaceAdmin
from tests.factories import CustomerFactory, MetricFactory, WorkspaceFactory
from tests.testapp.models import Order, Workspace

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.admin.host_site")]
LIST = "host:testapp_workspace_changelist"


@pytest.fixture
def host_viewer(db) -> User:
    return staff_with("view_workspace", "view_usageevent")


def usage_url(workspace: Workspace) -> str:
    return reverse("host:testapp_workspace_usage", args=[workspace.pk])


def test_usage_column_links_customers_and_shows_dash_without_one(client, host_viewer) -> None:
    billed = CustomerFactory(subscriber=WorkspaceFactory(name="Billed")).subscriber
    unbilled = WorkspaceFactory(name="Unbilled")
    client.force_login(host_viewer)

    page = client.get(reverse(LIST))

    assert f'<a href="{usage_url(billed)}"' in page.text
    assert usage_url(unbilled) not in page.text
    assert '<td class="field-usage_link">-</td>' in page.text


def test_change_list_resolves_customers_in_one_query(client, host_viewer) -> None:
    client.force_login(host_viewer)
    CustomerFactory.create_batch(2)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse(LIST))
    CustomerFactory.create_batch(20)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse(LIST))
    assert len(many) == len(few)


def test_no_usage_column_for_staff_who_cannot_see_usage(client) -> None:
    CustomerFactory()
    client.force_login(staff_with("view_workspace"))
    assert "field-usage_link" not in client.get(reverse(LIST)).text


def test_change_form_has_a_usage_button(client, host_viewer) -> None:
    workspace = CustomerFactory().subscriber
    alone = WorkspaceFactory()
    client.force_login(host_viewer)

    page = client.get(reverse("host:testapp_workspace_change", args=[workspace.pk]))
    other = client.get(reverse("host:testapp_workspace_change", args=[alone.pk]))

    assert f'<a href="{usage_url(workspace)}" class="bfu-usage-link">Usage</a>' in page.text
    assert "bfu-usage-link" not in other.text


def test_usage_page_in_the_host_breadcrumbs(client, host_viewer) -> None:
    customer = CustomerFactory(subscriber=WorkspaceFactory(name="Acme"))
    billflow_usage.record_usage(MetricFactory(key="orders"), customer.id, 3)
    client.force_login(host_viewer)

    page = client.get(usage_url(customer.subscriber))

    assert page.status_code == 200
    change = reverse("host:testapp_workspace_change", args=[customer.subscriber.pk])
    assert f'<a href="{change}">Acme</a>' in page.text
    assert page.context["usage"].customer_id == customer.id
    assert page.context["usage"].figures[0].ledger == 3


def test_usage_page_permissions_and_missing_objects(client, host_viewer) -> None:
    workspace = CustomerFactory().subscriber
    client.force_login(staff_with("view_workspace"))
    assert client.get(usage_url(workspace)).status_code == 403
    client.force_login(staff_with("view_usageevent"))
    assert client.get(usage_url(workspace)).status_code == 403
    client.force_login(host_viewer)
    assert client.get(reverse("host:testapp_workspace_usage", args=[999])).status_code == 404


def test_object_without_customer_goes_back_with_a_message(client, host_viewer) -> None:
    workspace = WorkspaceFactory(name="Trial")
    client.force_login(host_viewer)

    response = client.get(usage_url(workspace), follow=True)

    assert response.redirect_chain[-1][0] == reverse(
        "host:testapp_workspace_change", args=[workspace.pk]
    )
    assert "Trial has no Stripe customer" in response.text


def test_ambiguous_subscriber_has_no_customer() -> None:
    workspace = WorkspaceFactory()
    CustomerFactory.create_batch(2, subscriber=workspace)
    model_admin = WorkspaceAdmin(Workspace, admin.site)
    assert model_admin.usage_customer_id(workspace) is None


class WorkspaceByField(UsageAdminMixin, admin.ModelAdmin):
    usage_customer_field = "stripe_customer_id"


class OrderByWorkspace(UsageAdminMixin, admin.ModelAdmin):
    usage_customer_field = "workspace__stripe_customer_id"


def test_customer_from_a_field_or_a_path() -> None:
    workspace = WorkspaceFactory(stripe_customer_id="cus_Field1")
    order = Order.objects.create(workspace=workspace)
    assert WorkspaceByField(Workspace, admin.site).usage_customer_id(workspace) == "cus_Field1"
    assert OrderByWorkspace(Order, admin.site).usage_customer_id(order) == "cus_Field1"
    workspace.stripe_customer_id = "not-a-customer"
    assert WorkspaceByField(Workspace, admin.site).usage_customer_id(workspace) is None


class OrderWithoutCustomer(UsageAdminMixin, admin.ModelAdmin):
    pass


class OrderWithHook(UsageAdminMixin, admin.ModelAdmin):
    def usage_customer_id(self, obj):
        return obj.workspace.stripe_customer_id


def test_check_asks_how_to_find_the_customer() -> None:
    [error] = OrderWithoutCustomer(Order, admin.site).check()
    assert error.id == "billflow_usage.E201"
    assert "usage_customer_field" in error.hint
    assert OrderByWorkspace(Order, admin.site).check() == []
    assert OrderWithHook(Order, admin.site).check() == []
    assert WorkspaceAdmin(Workspace, admin.site).check() == []


def test_view_permission_alone_gives_no_reconcile_action(client, host_viewer) -> None:
    CustomerFactory()
    client.force_login(host_viewer)
    assert "reconcile_usage_dry_run" not in client.get(reverse(LIST)).text
    host_viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_syncreport", "change_subscriptionitemlink"])
    )
    client.force_login(User.objects.get(pk=host_viewer.pk))
    assert "reconcile_usage_dry_run" in client.get(reverse(LIST)).text
