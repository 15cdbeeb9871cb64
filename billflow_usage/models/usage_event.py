from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billflow_usage.models.limits import (
    CUSTOMER_PREFIX,
    IDENTIFIER_MAX_LENGTH,
    MAX_VALUE,
    STRIPE_ID_MAX_LENGTH,
)
from billflow_usage.models.metric import Metric


class UsageEvent(models.Model):
    """One recorded unit (or correction) of metered usage: the ledger and the outbox.

    Rows are appended, never edited to change what was billed: a correction is a new row
    with a negative value, or a cancellation while Stripe still allows one. Only the delivery
    columns change as workers send the row.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    id = models.BigAutoField(primary_key=True)
    #: Empty only on a failed (or cancelled) row of a tracker whose metric doesn't exist, so
    #: the usage is kept even then; such a row is never sent.
    metric = models.ForeignKey(
        Metric, on_delete=models.PROTECT, null=True, blank=True, related_name="usage_events"
    )
    customer_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH)
    value = models.BigIntegerField()
    occurred_at = models.DateTimeField(default=timezone.now)
    identifier = models.CharField(max_length=IDENTIFIER_MAX_LENGTH, unique=True)
    source_content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_object_id = models.CharField(max_length=255, blank=True)
    source = GenericForeignKey("source_content_type", "source_object_id")
    livemode = models.BooleanField(default=False)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    #: Which claim holds the row, so a worker whose lease expired can't mark it.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    #: Set when aggregation sent this row as part of one Stripe event.
    group = models.ForeignKey(
        "billflow_usage.DeliveryGroup",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
    )
    last_error_code = models.CharField(max_length=100, blank=True)
    last_error_message = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("usage event")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sent", "failed", "cancelled"]),
                name="bfu_event_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(value__gte=-MAX_VALUE, value__lte=MAX_VALUE),
                name="bfu_event_value_digits",
            ),
            models.CheckConstraint(
                condition=Q(customer_id__startswith=CUSTOMER_PREFIX),
                name="bfu_event_customer_id_format",
            ),
            models.CheckConstraint(
                condition=~Q(identifier=""), name="bfu_event_identifier_not_empty"
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="bfu_event_sent_has_time",
            ),
            models.CheckConstraint(
                condition=Q(metric__isnull=False) | Q(status__in=["failed", "cancelled"]),
                name="bfu_event_metric_unless_failed",
            ),
        ]
        indexes = [
            # The delivery query: due pending events, oldest first.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="bfu_event_due_idx",
            ),
            # The reconciliation query: one customer's metric over a period.
            models.Index(
                fields=["customer_id", "metric", "occurred_at"], name="bfu_event_reconcile_idx"
            ),
            models.Index(
                fields=["source_content_type", "source_object_id"], name="bfu_event_source_idx"
            ),
        ]

    def __str__(self) -> str:
        metric = "no metric" if self.metric_id is None else self.metric_id
        return f"{self.identifier}: {self.value} x {metric} for {self.customer_id}"

    @property
    def metric_key(self) -> str:
        """The metric's key ("" on a failed row kept without a metric)."""
        return "" if self.metric is None else self.metric.key
