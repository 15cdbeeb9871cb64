"""Usage limits: per metric, for a customer, a Stripe price's subscribers, or everyone."""

from __future__ import annotations

from django.contrib import admin

from billflow_usage.admin.generic import ModelAdmin
from billflow_usage.models import UsageLimit, UsageThresholdCrossing


@admin.register(UsageLimit)
class UsageLimitAdmin(ModelAdmin[UsageLimit]):
    list_display = ["metric", "scope_shown", "limit", "kind", "thresholds"]
    list_filter = ["kind", "metric"]
    search_fields = ["customer_id", "stripe_price_id", "metric__key"]
    fields = ["metric", "limit", "kind", "thresholds", "customer_id", "stripe_price_id"]

    @admin.display(description="applies to")
    def scope_shown(self, obj: UsageLimit) -> str:
        return obj.customer_id or obj.stripe_price_id or "everyone"


@admin.register(UsageThresholdCrossing)
class UsageThresholdCrossingAdmin(ModelAdmin[UsageThresholdCrossing]):
    """Read-only: the crossings already announced (each once per period)."""

    list_display = ["customer_id", "metric", "threshold", "used", "limit", "crossed_at"]
    list_filter = ["metric", "threshold"]
    search_fields = ["customer_id"]
    date_hierarchy = "crossed_at"

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
