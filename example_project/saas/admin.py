from django.contrib import admin

from billflow_usage.admin import UsageAdminMixin
from saas.models import ApiCall, Member, Workspace


class MemberInline(admin.TabularInline):
    model = Member
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(UsageAdminMixin, admin.ModelAdmin):
    """Workspaces are dj-stripe subscribers: the mixin finds each one's Stripe customer and
    adds the "Usage" column, the "Usage" button and the dry reconciliation action."""

    list_display = ["name", "email", "usage_link"]
    inlines = [MemberInline]


@admin.register(ApiCall)
class ApiCallAdmin(admin.ModelAdmin):
    list_display = ["endpoint", "workspace", "created_at"]
    list_filter = ["workspace"]
