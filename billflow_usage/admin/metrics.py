"""Metrics: what is billed, with the Stripe meter and price each maps to, and a check that the
meter really exists in Stripe."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from billflow_usage.admin.generic import ModelAdmin
from billflow_usage.models import Metric
from billflow_usage.services.meter_check import (
    MeterCheck,
    MetersUnavailable,
    check_meter,
    stripe_meters,
)

STRIPE_FIELDS = ["event_name", "stripe_meter_id", "aggregation", "stripe_price_id"]


@admin.register(Metric)
class MetricAdmin(ModelAdmin[Metric]):
    list_display = [
        "key",
        "display_name",
        "kind",
        "event_name",
        "aggregation",
        "stripe_meter_id",
        "stripe_price_id",
        "active",
    ]
    list_filter = ["kind", "active", "aggregation"]
    search_fields = ["key", "display_name", "event_name", "stripe_meter_id", "stripe_price_id"]
    readonly_fields = ["meter_in_stripe", "created_at", "updated_at"]
    actions = ["check_meters"]

    def get_fieldsets(self, request: HttpRequest, obj: Metric | None = None) -> Any:
        """The meter check only on saved metrics: it reads Stripe for the stored meter."""
        stripe = STRIPE_FIELDS + (["meter_in_stripe"] if obj is not None else [])
        return [
            (None, {"fields": ["key", "display_name", "kind", "active"]}),
            ("Stripe", {"fields": stripe}),
            ("Seats", {"fields": ["proration_behavior"]}),
            ("History", {"fields": ["created_at", "updated_at"]}),
        ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Metrics with usage are protected; deactivate them instead."""
        return False

    @admin.display(description="Meter in Stripe")
    def meter_in_stripe(self, metric: Metric) -> str:
        try:
            check = check_meter(metric, stripe_meters() if metric.is_metered else [])
        except MetersUnavailable as exc:
            check = MeterCheck(False, str(exc))
        if check.ok:
            return format_html('<span style="color:#2e7d32">&#10003; {}</span>', check.message)
        return format_html('<strong style="color:var(--error-fg)">{}</strong>', check.message)

    @admin.action(description="Check meters in Stripe", permissions=["change"])
    def check_meters(self, request: HttpRequest, queryset: QuerySet[Metric]) -> None:
        """Read Stripe's meters once and report, per selected metric, what is wrong if
        anything."""
        try:
            meters = stripe_meters()
        except MetersUnavailable as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        for metric in queryset.order_by("key"):
            check = check_meter(metric, meters)
            level = messages.SUCCESS if check.ok else messages.WARNING
            self.message_user(request, f"{metric}: {check.message}", level)
