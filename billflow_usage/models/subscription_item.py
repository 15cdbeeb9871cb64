from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billflow_usage.models.limits import (
    CUSTOMER_PREFIX,
    STRIPE_ID_MAX_LENGTH,
    SUBSCRIPTION_ITEM_PREFIX,
)
from billflow_usage.models.metric import Metric


class SubscriptionItemLink(models.Model):
    """The Stripe subscription item that bills one customer for one metric.

    For licensed metrics it also holds the seat count: ``quantity`` is what the application
    (or staff in the admin) wants, ``synced_quantity`` what Stripe last confirmed. Every change
    of ``quantity`` bumps ``quantity_version`` so a slow push of an older quantity can never
    overwrite a newer one.
    """

    customer_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH)
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="subscription_items")
    stripe_subscription_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH, blank=True)
    stripe_subscription_item_id = models.CharField(
        max_length=STRIPE_ID_MAX_LENGTH,
        blank=True,
        help_text=_("Blank until billflow_sync (or a webhook) finds the customer's item."),
    )
    quantity = models.PositiveBigIntegerField(
        null=True, blank=True, help_text=_("Licensed metrics: the desired seat count.")
    )
    quantity_version = models.PositiveIntegerField(default=0, editable=False)
    quantity_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    synced_quantity = models.PositiveBigIntegerField(
        null=True, blank=True, editable=False, help_text=_("What Stripe last confirmed.")
    )
    synced_version = models.PositiveIntegerField(default=0, editable=False)
    synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: A seat tracker saw a change whose quantity is not recomputed yet (set inside the host's
    #: transaction, cleared after commit), so a crash in between is repaired by workers.
    quantity_stale = models.BooleanField(default=False, editable=False)
    #: Seat pushes: when the next may go (backoff and Stripe's per-subscription rate limit),
    #: or while a worker holds the link, when its lease ends.
    push_after = models.DateTimeField(null=True, blank=True, editable=False)
    #: Which claim holds the link, so a worker whose lease ran out can't mark or release it.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    push_attempts = models.PositiveIntegerField(default=0, editable=False)
    last_error_code = models.CharField(max_length=100, blank=True, editable=False)
    last_error_message = models.TextField(blank=True, editable=False)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    livemode = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("subscription item")
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "metric"],
                condition=Q(active=True),
                name="bfu_link_one_active_per_customer_metric",
            ),
            models.UniqueConstraint(
                fields=["stripe_subscription_item_id"],
                condition=Q(active=True) & ~Q(stripe_subscription_item_id=""),
                name="bfu_link_one_active_per_item",
            ),
            models.CheckConstraint(
                condition=Q(customer_id__startswith=CUSTOMER_PREFIX),
                name="bfu_link_customer_id_format",
            ),
            models.CheckConstraint(
                condition=Q(stripe_subscription_item_id="")
                | Q(stripe_subscription_item_id__startswith=SUBSCRIPTION_ITEM_PREFIX),
                name="bfu_link_item_id_format",
            ),
            models.CheckConstraint(
                condition=Q(synced_version__lte=models.F("quantity_version")),
                name="bfu_link_synced_not_ahead",
            ),
        ]

    def __str__(self) -> str:
        item = self.stripe_subscription_item_id or "no item yet"
        return f"{self.customer_id} / {self.metric.key} ({item})"

    def change_quantity(self, quantity: int) -> bool:
        """Set a new desired quantity (not saved); returns False when nothing changed.

        Each change bumps ``quantity_version``: pushes carry it, so an older push landing late
        can never overwrite a newer quantity.
        """
        if self.quantity == quantity:
            return False
        self.quantity = quantity
        self.quantity_version += 1
        self.quantity_changed_at = timezone.now()
        return True

    #: What :meth:`change_quantity` changes, for ``save(update_fields=...)``.
    QUANTITY_FIELDS = ("quantity", "quantity_version", "quantity_changed_at", "updated_at")

    @property
    def quantity_in_sync(self) -> bool:
        return self.synced_version == self.quantity_version
