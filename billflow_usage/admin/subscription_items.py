"""Subscription items: where each customer is billed, and seat quantities staff may change."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import router, transaction
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from billflow_usage.admin.generic import ModelAdmin, ModelForm
from billflow_usage.admin.reconciliation import can_reconcile, dry_reconciliation
from billflow_usage.admin.usage_page import customer_usage_url
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery.trigger import schedule_delivery
from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.redaction import redact
from billflow_usage.tracking import registry
from billflow_usage.tracking.seats import QuantityTracker

METERED_QUANTITY_ERROR = (
    "Quantity only applies to licensed (per-seat) metrics; {metric} is metered, so Stripe "
    "bills it from usage events."
)
OWNED_QUANTITY_ERROR = (
    "The {metric} quantity of {customer} is counted by {tracker!r}: its count is what Stripe "
    "bills, so an edit here would be overwritten. Fix the counted objects, or use the "
    "\u201cRecount now\u201d action to count again now."
)


def quantity_owner(link: SubscriptionItemLink) -> QuantityTracker | None:
    """The ``track_quantity`` tracker whose count is this link's quantity, if any."""
    if link.metric.kind != Metric.Kind.LICENSED:
        return None
    return registry.quantity_tracker(link.metric.key)


class QuantityForm(ModelForm[SubscriptionItemLink]):
    """Quantity edits, refused for metered items (Stripe rejects a quantity on those) and for
    quantities a tracker counts (its count is the truth)."""

    class Meta:
        model = SubscriptionItemLink
        fields = ["quantity"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "quantity" in self.fields and (not self._is_licensed() or self._owner()):
            # Greyed out in the browser; a value posted anyway is refused in clean_quantity.
            self.fields["quantity"].widget.attrs["disabled"] = True
            self.fields["quantity"].required = False

    def _is_licensed(self) -> bool:
        return bool(self.instance.metric_id) and self.instance.metric.kind == Metric.Kind.LICENSED

    def _owner(self) -> QuantityTracker | None:
        return quantity_owner(self.instance) if self._is_licensed() else None

    def clean_quantity(self) -> int | None:
        quantity: int | None = self.cleaned_data.get("quantity")
        link = self.instance
        if not self._is_licensed():
            if quantity is not None:
                raise forms.ValidationError(METERED_QUANTITY_ERROR.format(metric=link.metric.key))
            return link.quantity
        owner = self._owner()
        if owner is not None:
            if quantity is not None and quantity != link.quantity:
                raise forms.ValidationError(
                    OWNED_QUANTITY_ERROR.format(
                        metric=link.metric.key, customer=link.customer_id, tracker=owner
                    )
                )
            return link.quantity
        if quantity is None:
            raise forms.ValidationError("Enter a whole number of seats (0 or more).")
        return quantity


@admin.register(SubscriptionItemLink)
class SubscriptionItemLinkAdmin(ModelAdmin[SubscriptionItemLink]):
    form = QuantityForm
    change_form_template = "admin/billflow_usage/usage_change_form.html"
    actions = ["reconcile_dry_run", "recount_quantities"]
    list_display = [
        "customer_id",
        "metric",
        "stripe_subscription_item_id",
        "quantity",
        "counted_by_column",
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
        "counted_by",
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
        (
            "Seats",
            {"fields": ["quantity", "counted_by", "proration_on_save", "stripe_confirmation"]},
        ),
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

    @admin.action(
        description="Recount now: store the tracker's count of the selected seats",
        permissions=["change"],
    )
    def recount_quantities(
        self, request: HttpRequest, queryset: QuerySet[SubscriptionItemLink]
    ) -> None:
        """Run each owning tracker's recount (which queues the push), logged per link."""
        recounted = left_alone = 0
        for link in queryset.select_related("metric"):
            tracker = quantity_owner(link) if link.active else None
            if tracker is None:
                left_alone += 1
                continue
            before = link.quantity
            try:
                tracker.store(link.customer_id)
            except Exception as exc:
                self.message_user(
                    request,
                    f"{tracker!r} could not count {link.customer_id}: "
                    f"{type(exc).__name__}: {redact(str(exc))}",
                    messages.ERROR,
                )
                continue
            link.refresh_from_db()
            self.log_change(
                request, link, f"Recounted by {tracker!r}: {link.quantity} (was {before})."
            )
            recounted += 1
        if recounted:
            self.message_user(
                request,
                f"{recounted} {'quantity' if recounted == 1 else 'quantities'} recounted; "
                "a changed one is queued for Stripe.",
            )
        if left_alone:
            self.message_user(
                request,
                f"{left_alone} selected link(s) left alone: inactive, or no tracker counts its "
                "quantity (edit that quantity instead).",
                messages.WARNING,
            )

    @admin.display(description="Counted by")
    def counted_by(self, link: SubscriptionItemLink) -> str:
        tracker = quantity_owner(link)
        if tracker is None:
            return "-" if link.metric.kind != Metric.Kind.LICENSED else "Nobody: edit it here."
        try:
            count = f"which counts {tracker.quantity(link.customer_id)} now"
        except Exception as exc:
            count = f"which could not count now ({type(exc).__name__}: {redact(str(exc))})"
        return (
            f"Counted by {tracker!r}, {count}. Its count is the quantity, so it can't be "
            "edited here: use the \u201cRecount now\u201d action to store the count now."
        )

    @admin.display(description="Counted by")
    def counted_by_column(self, link: SubscriptionItemLink) -> str:
        tracker = quantity_owner(link)
        return "-" if tracker is None else tracker.label

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
