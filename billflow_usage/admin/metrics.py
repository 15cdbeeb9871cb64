from django.contrib import admin

from billflow_usage.models import Metric


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
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
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["key", "display_name", "kind", "active"]}),
        ("Stripe", {"fields": ["event_name", "stripe_meter_id", "aggregation", "stripe_price_id"]}),
        ("Seats", {"fields": ["proration_behavior"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        """Metrics with usage are protected; deactivate them instead."""
        return False
