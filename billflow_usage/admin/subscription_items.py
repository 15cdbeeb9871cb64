"""Subscription items: where each customer is billed, and seat quantities staff may change."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import router, transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from billflow_usage.admin.reconciliation import can_reconcile, dry_reconciliation
from billflow_usage.admin.usage_page import customer_usage_url
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery.trigger import schedule_delivery
from billflow_usage.models import Metric, SubscriptionItemLink

METERED_QUANTITY_ERROR = (
    "Quantity only applies to licensed (per-seat) metrics; {metric} is metered, so Stripe "
    "bills it from usage events."
)


class QuantityForm(forms.ModelForm):
    """Quantity edits, refused for metered items (Stripe rejects a quantity on those)."""

    class Meta:
        model = SubscriptionItemLink
        fields = ["quantity"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "quantity" in self.fields and not self._is_licensed():
            # Greyed out in the browser; a value posted anyway is refused in clean_quantity.
            self.fields["quantity"].widget.attrs["disabled"] = True
            self.fields["quantity"].required = False

    def _is_licensed(self) -> bool:
        return bool(self.instance.metric_id) and self.instance.metric.kind == Metric.Kind.LICENSED

    def clean_quantity(self) -> int | None:
        quantity: int | None = self.cleaned_data.get("quantity")
        if not self._is_licensed():
            if quantity is not None:
                raise forms.ValidationError(
                    METERED_QUANTITY_ERROR.format(metric=self.instance.metric.key)
                )
            return self.instance.quantity
        if quantity is None:
            raise forms.ValidationError("Enter a whole number of seats (0 or more).")
        return quantity


@admin.register(SubscriptionItemLink)
class SubscriptionItemLinkAdmin(admin.ModelAdmin):
    form = QuantityForm
    change_form_template = "admin/billflow_usage/usage_change_form.html"
    actions = ["reconcile_dry_run"]
    list_display = [
        "customer_id",
        "metric",
        "stripe_subscription_item_id",
        "quantity",
        "synced_quantity",
        "sync_state",
        "current_period_end",
        "synced_at",
        "active",
        "usage_link",
    ]
    list_editable = ["quantity"]
    list_filter = ["active", "metric", "livemode"]
    list_select_related = ["metric"]
    search_fields = ["=customer_id", "=stripe_subscription_item_id", "=stripe_subscription_id"]
    readonly_fields = [
        "customer_id",
        "metric",
        "stripe_subscription_id",
        "stripe_subscription_item_id",
        "proration_on_save",
        "stripe_confirmation",
        "current_period_start",
        "current_period_end",
        "active",
        "livemode",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["customer_id", "metric", "active", "livemode"]}),
        ("Seats", {"fields": ["quantity", "proration_on_save", "stripe_confirmation"]}),
        (
            "Stripe",
            {
                "fields": [
                    "stripe_subscription_id",
                    "stripe_subscription_item_id",
                    "current_period_start",
                    "current_period_end",
                ]
            },
        ),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[QuantityForm]:
        return QuantityForm

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Links come from set_quantity, trackers and billflow_sync, not by hand."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_billflow_reconcile_permission(self, request: HttpRequest) -> bool:
        return can_reconcile(request)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: SubscriptionItemLink | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["billflow_usage_url"] = self._usage_url(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.display(description="Usage")
    def usage_link(self, link: SubscriptionItemLink) -> str:
        return format_html(
            '<a href="{}" title="Usage of {} this billing period">Usage</a>',
            self._usage_url(link),
            link.customer_id,
        )

    def _usage_url(self, link: SubscriptionItemLink) -> str:
        return customer_usage_url(link.customer_id, site_name=self.admin_site.name)

    @admin.action(
        description="Dry-run reconciliation for the selected customers",
        permissions=["billflow_reconcile"],
    )
    def reconcile_dry_run(
        self, request: HttpRequest, queryset: QuerySet[SubscriptionItemLink]
    ) -> HttpResponse | None:
        """``billflow_sync --dry-run`` for these links' customers; shows the stored report."""
        customers = queryset.order_by().values_list("customer_id", flat=True).distinct()
        return dry_reconciliation(self, request, customers)

    @admin.display(description="Sync")
    def sync_state(self, link: SubscriptionItemLink) -> str:
        if link.metric.kind != Metric.Kind.LICENSED:
            return "-"
        if link.quantity_in_sync:
            return format_html('<span style="color:#2e7d32">{}</span>', "in sync")
        return format_html(
            '<strong style="color:#c62828">{}</strong>',
            f"pending: Stripe has {_or_dash(link.synced_quantity)}",
        )

    @admin.display(description="Proration when saved")
    def proration_on_save(self, link: SubscriptionItemLink) -> str:
        behavior = link.metric.proration_behavior or billflow_settings.DEFAULT_PRORATION_BEHAVIOR
        return f"{behavior} (Stripe applies this to the quantity change)"

    @admin.display(description="Stripe")
    def stripe_confirmation(self, link: SubscriptionItemLink) -> str:
        if link.quantity_in_sync and link.synced_at:
            return (
                f"Stripe confirmed {link.synced_quantity} at {link.synced_at:%Y-%m-%d %H:%M:%S %Z}."
            )
        if not link.stripe_subscription_item_id:
            return (
                "No subscription item yet: billflow_sync will find it, then the quantity is pushed."
            )
        return (
            f"Waiting for Stripe to confirm {link.quantity} (Stripe last confirmed "
            f"{_or_dash(link.synced_quantity)})."
        )

    def save_model(
        self, request: HttpRequest, obj: SubscriptionItemLink, form: Any, change: bool
    ) -> None:
        """Apply a quantity edit to the locked current row, versioned like set_quantity.

        Only the quantity is editable; going through ``change_quantity`` on the locked row
        means a concurrent tracker update is never overwritten by this (older) form.
        """
        if "quantity" not in form.changed_data or obj.quantity is None:
            return
        using = router.db_for_write(SubscriptionItemLink)
        with transaction.atomic(using=using):
            current = SubscriptionItemLink.objects.select_for_update().get(pk=obj.pk)
            if current.change_quantity(obj.quantity):
                current.save(update_fields=SubscriptionItemLink.QUANTITY_FIELDS)
                schedule_delivery(using=using, link_ids=[current.pk])
        obj.refresh_from_db()

    def get_queryset(self, request: HttpRequest) -> QuerySet[SubscriptionItemLink]:
        return super().get_queryset(request).order_by(F("active").desc(), "customer_id")


def _or_dash(quantity: int | None) -> str:
    return "-" if quantity is None else str(quantity)
