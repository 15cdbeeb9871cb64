"""A host project's admin site: the test app's workspaces (dj-stripe subscribers) with
``UsageAdminMixin``, next to the ledger's own admins, as a project's admin would have them."""

from django.contrib import admin
from django.urls import path

from billflow_usage.admin import (
    SubscriptionItemLinkAdmin,
    SyncReportAdmin,
    UsageAdminMixin,
    UsageEventAdmin,
)
from billflow_usage.models import SubscriptionItemLink, SyncReport, UsageEvent
from tests.testapp.models import Workspace


class WorkspaceAdmin(UsageAdminMixin, admin.ModelAdmin):
    list_display = ["name"]


site = admin.AdminSite(name="host")
site.register(Workspace, WorkspaceAdmin)
site.register(UsageEvent, UsageEventAdmin)
site.register(SubscriptionItemLink, SubscriptionItemLinkAdmin)
site.register(SyncReport, SyncReportAdmin)

urlpatterns = [path("host/", site.urls)]
