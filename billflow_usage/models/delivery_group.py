from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billflow_usage.models.limits import IDENTIFIER_MAX_LENGTH, STRIPE_ID_MAX_LENGTH
from billflow_usage.models.metric import Metric


class DeliveryGroup(models.Model):
    """Several pending events of one customer and sum metric sent as one Stripe event.

    The group is written (with its identifier) before anything is sent, so a resend after a
    crash carries the same identifier and Stripe deduplicates it.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    identifier = models.CharField(max_length=IDENTIFIER_MAX_LENGTH, unique=True)
    metric = models.ForeignKey(Metric, on_delete=models.PROTECT, related_name="delivery_groups")
    customer_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH)
    value = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery group")
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sent", "failed"]),
                name="bfu_group_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.identifier}: {self.value} x {self.metric.key} for {self.customer_id}"
