from django.contrib import admin

from saas.models import ApiCall, Member, Workspace


class MemberInline(admin.TabularInline):
    model = Member
    extra = 0


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "email"]
    inlines = [MemberInline]


@admin.register(ApiCall)
class ApiCallAdmin(admin.ModelAdmin):
    list_display = ["endpoint", "workspace", "created_at"]
    list_filter = ["workspace"]
