"""The ledger, read-only: filters, exact-match search, the two safe actions, and the
per-customer usage page."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from billflow_usage.admin.generic import ModelAdmin
from billflow_usage.admin.pagination import EstimatedCountPaginator
from billflow_usage.admin.usage_page import (
    URL_NAME,
    customer_usage_url,
    model_breadcrumbs,
    render_customer_usage,
)
from billflow_usage.identifiers import GROUP_PREFIX
from billflow_usage.models import UsageEvent
from billflow_usage.models.usage_event import UsageEventQuerySet
from billflow_usage.services.cancelling import cancel_events
from billflow_usage.services.retrying import retry_failed

#: Characters of an identifier and of an error the list shows (the title holds the whole).
IDENTIFIER_SHOWN = 20
ERROR_SHOWN = 60


def shortened(text: str, limit: int, *, keep_end: int = 0) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, keeping its last ``keep_end``
    (an identifier's end tells rows apart as well as its start)."""
    if len(text) <= limit:
        return text
    head = limit - 1 - keep_end
    return text[:head] + "\u2026" + (text[-keep_end:] if keep_end else "")


@admin.register(UsageEvent)
class UsageEventAdmin(ModelAdmin[UsageEvent]):
    # As an operator reads a row: when, who, what, how much, and whether it reached Stripe;
    # the 64-character identifier last and shortened (whole on the row's own page).
    list_display = [
        "occurred_at",
        "customer_link",
        "metric_key",
        "value",
        "status",
        "attempts",
        "error",
        "short_identifier",
        "sent_at",
        "source_link",
    ]
    list_filter = ["status", "metric", "livemode", "occurred_at"]
    list_select_related = ["metric", "source_content_type"]
    search_fields = ["customer_id", "identifier"]
    search_help_text = (
        "An exact customer ID (cus_...), event identifier, or aggregated event identifier "
        "(bfug_...)."
    )
    date_hierarchy = "occurred_at"
    ordering = ["-id"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["retry_failed", "cancel_events"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Nothing that changes what was billed is editable: corrections are new rows."""
        return [field.name for field in self.model._meta.fields] + ["source_link"]

    def get_urls(self) -> list[URLPattern]:
        usage = path(
            "customer/<str:customer_id>/usage/",
            self.admin_site.admin_view(self.customer_usage_view),
            name=URL_NAME,
        )
        # Before the inherited patterns, whose "<path:object_id>/" would match it.
        return [usage, *super().get_urls()]

    def customer_usage_view(self, request: HttpRequest, customer_id: str) -> HttpResponse:
        """The customer's usage this billing period: ledger, Stripe, drift, daily chart."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        breadcrumbs = [*model_breadcrumbs(self.admin_site, self.model._meta), (customer_id, "")]
        return render_customer_usage(request, self.admin_site, customer_id, breadcrumbs=breadcrumbs)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[UsageEvent], search_term: str
    ) -> tuple[QuerySet[UsageEvent], bool]:
        """Exact matches only, so both lookups use an index on a ledger of any size."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.startswith(GROUP_PREFIX):
            return queryset.filter(group__identifier=term), False
        return queryset.filter(Q(customer_id=term) | Q(identifier=term)), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = (extra_context or {}) | {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="Customer", ordering="customer_id")
    def customer_link(self, event: UsageEvent) -> str:
        url = customer_usage_url(event.customer_id, site_name=self.admin_site.name)
        return format_html(
            '<a href="{}" title="Usage this billing period">{}</a>', url, event.customer_id
        )

    @admin.display(description="Metric", ordering="metric__key")
    def metric_key(self, event: UsageEvent) -> str:
        return event.metric_key or "-"

    @admin.display(description="Error", ordering="last_error_code")
    def error(self, event: UsageEvent) -> str:
        if not event.last_error_code:
            return "-"
        text = f"{event.last_error_code}: {event.last_error_message}".rstrip(": ")
        return format_html('<span title="{}">{}</span>', text, shortened(text, ERROR_SHOWN))

    @admin.display(description="Identifier", ordering="identifier")
    def short_identifier(self, event: UsageEvent) -> str:
        shown = shortened(event.identifier, IDENTIFIER_SHOWN, keep_end=6)
        return format_html('<span title="{}">{}</span>', event.identifier, shown)

    @admin.display(description="Source")
    def source_link(self, event: UsageEvent) -> str:
        content_type = event.source_content_type
        if content_type is None:
            return "-"
        label = f"{content_type.app_label}.{content_type.model} #{event.source_object_id}"
        try:
            url = reverse(
                f"admin:{content_type.app_label}_{content_type.model}_change",
                args=[event.source_object_id],
            )
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.action(description="Retry selected failed events", permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset: UsageEventQuerySet) -> None:
        """Failed rows go back to pending, within limits and rules (see
        :mod:`billflow_usage.services.retrying`)."""
        outcome = retry_failed(queryset, now=timezone.now())
        self._log_retried(request, outcome.retried)
        self.message_user(
            request, f"{len(outcome.retried)} failed event(s) queued for another attempt."
        )
        for reason in outcome.refused:
            self.message_user(request, reason, messages.WARNING)

    def _log_retried(self, request: HttpRequest, events: list[UsageEvent]) -> None:
        """A LogEntry per row, as ``log_change`` writes, but one INSERT per error code: a run
        retries up to ``RETRY_LIMIT`` rows."""
        by_code: defaultdict[str, list[UsageEvent]] = defaultdict(list)
        for event in events:
            by_code[event.last_error_code].append(event)
        for code, retried in by_code.items():
            LogEntry.objects.log_actions(
                cast(int, request.user.pk), retried, CHANGE, f"Retried after {code or 'failure'}."
            )

    @admin.action(
        description="Cancel selected events (pending, or sent to Stripe within 24 h)",
        permissions=["change"],
    )
    def cancel_events(self, request: HttpRequest, queryset: QuerySet[UsageEvent]) -> None:
        """Pending rows are cancelled here, recently sent ones in Stripe (see
        :mod:`billflow_usage.services.cancelling`)."""
        outcome = cancel_events(
            list(queryset.select_related("metric", "group")), now=timezone.now()
        )
        for event, message in outcome.cancelled:
            self.log_change(request, event, message)
        self.message_user(request, f"{len(outcome.cancelled)} event(s) cancelled.")
        for reason in outcome.refused:
            self.message_user(request, reason, messages.WARNING)
