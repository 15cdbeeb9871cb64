"""Reconciliation reports from ``billflow_sync``: listed and readable, never edited.

A report's lists (drift, unbilled usage, failed events, changes...) are shown a page of one
list at a time: rows stored before reports were capped can hold thousands of entries, and
the list of reports never loads the reports themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from billflow_usage.admin.generic import ModelAdmin
from billflow_usage.models import SyncReport

REPORT_FIELDS = (
    "started_at",
    "finished_at",
    "mode",
    "status",
    "drift_remaining",
    "error_message",
    "pretty_summary",
)
#: Entries of one list on one page of a report.
ENTRIES_PER_PAGE = 50
#: The list ``SyncReport.changes`` is shown as, next to the report's own lists.
CHANGES = "changes"


@dataclass(frozen=True)
class Section:
    """One list of a report, with the number of its entries kept and left out."""

    name: str
    count: int
    left_out: int


@dataclass(frozen=True)
class EntriesPage:
    """What the change form shows of a report's lists: the lists, and one page of one."""

    sections: list[Section]
    current: str
    page: Page[Any]
    columns: list[str]
    rows: list[list[str]]


@admin.register(SyncReport)
class SyncReportAdmin(ModelAdmin[SyncReport]):
    list_display = ["started_at", "mode", "status", "drift_remaining", "checked", "finished_at"]
    list_filter = ["mode", "status"]
    date_hierarchy = "started_at"
    ordering = ["-started_at"]
    fields = REPORT_FIELDS
    readonly_fields = REPORT_FIELDS
    change_form_template = "admin/billflow_usage/syncreport/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[SyncReport]:
        """The report and its changes are read only by the page of one report."""
        return super().get_queryset(request).defer("report", "changes")

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: SyncReport | None = None,
    ) -> HttpResponse:
        if obj is not None:
            section, page = request.GET.get("section", ""), request.GET.get("page")
            context["report_entries"] = entries_page(obj, section, page)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Metered pairs checked")
    def checked(self, report: SyncReport) -> int:
        return int(report.summary.get("metered_checked", 0))

    @admin.display(description="Summary")
    def pretty_summary(self, report: SyncReport) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(report.summary, indent=2, sort_keys=True, default=str)
        )


def entries_page(report: SyncReport, section: str, page: str | None) -> EntriesPage:
    """Page ``page`` of the list ``section`` (the first non-empty list when not one)."""
    lists = {k: v for k, v in (report.report or {}).items() if isinstance(v, list)}
    lists[CHANGES] = report.changes if isinstance(report.changes, list) else []
    left_out = (report.report or {}).get("left_out") or {}
    sections = [
        Section(name, len(entries), int(left_out.get(name, 0) or 0))
        for name, entries in lists.items()
    ]
    if section not in lists:
        section = next((s.name for s in sections if s.count), CHANGES)
    shown = Paginator(lists[section], ENTRIES_PER_PAGE).get_page(page)
    entries = [e if isinstance(e, dict) else {"value": e} for e in shown.object_list]
    columns = list(dict.fromkeys(key for entry in entries for key in entry))
    rows = [[_cell(entry.get(column)) for column in columns] for entry in entries]
    return EntriesPage(sections, section, shown, columns, rows)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)
