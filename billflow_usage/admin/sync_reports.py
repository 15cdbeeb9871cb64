"""Reconciliation reports from ``billflow_sync``: listed and readable, never edited."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from billflow_usage.models import SyncReport

REPORT_FIELDS = (
    "started_at",
    "finished_at",
    "mode",
    "status",
    "drift_remaining",
    "error_message",
    "pretty_summary",
    "pretty_changes",
    "pretty_report",
)


@admin.register(SyncReport)
class SyncReportAdmin(admin.ModelAdmin):
    list_display = ["started_at", "mode", "status", "drift_remaining", "checked", "finished_at"]
    list_filter = ["mode", "status"]
    date_hierarchy = "started_at"
    ordering = ["-started_at"]
    fields = REPORT_FIELDS
    readonly_fields = REPORT_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Metered pairs checked")
    def checked(self, report: SyncReport) -> int:
        return int(report.summary.get("metered_checked", 0))

    @admin.display(description="Summary")
    def pretty_summary(self, report: SyncReport) -> str:
        return _json_block(report.summary)

    @admin.display(description="Changes made")
    def pretty_changes(self, report: SyncReport) -> str:
        return _json_block(report.changes)

    @admin.display(description="Full report (JSON)")
    def pretty_report(self, report: SyncReport) -> str:
        return _json_block(report.report)


def _json_block(value: object) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))
