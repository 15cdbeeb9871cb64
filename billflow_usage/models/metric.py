from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billflow_usage.models.limits import STRIPE_ID_MAX_LENGTH


class Metric(models.Model):
    """Something billed: a Stripe meter (metered) or a per-seat price (licensed)."""

    class Kind(models.TextChoices):
        METERED = "metered", _("Metered (usage events)")
        LICENSED = "licensed", _("Licensed (seat quantity)")

    class Aggregation(models.TextChoices):
        SUM = "sum", _("Sum")
        COUNT = "count", _("Count")
        LAST = "last", _("Last")

    class Proration(models.TextChoices):
        CREATE_PRORATIONS = "create_prorations", _("Create prorations")
        ALWAYS_INVOICE = "always_invoice", _("Always invoice")
        NONE = "none", _("None")

    key = models.SlugField(
        max_length=100, unique=True, help_text=_("What trackers and record_usage() name.")
    )
    display_name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.METERED)
    event_name = models.CharField(
        max_length=100,
        blank=True,
        help_text=_("The Stripe meter's event name. Defaults to the key."),
    )
    stripe_meter_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH, blank=True)
    aggregation = models.CharField(
        max_length=8, choices=Aggregation.choices, default=Aggregation.SUM
    )
    stripe_price_id = models.CharField(
        max_length=STRIPE_ID_MAX_LENGTH,
        blank=True,
        help_text=_("Identifies each customer's subscription item for this metric."),
    )
    proration_behavior = models.CharField(
        max_length=32,
        choices=Proration.choices,
        blank=True,
        help_text=_(
            "Licensed metrics: how Stripe prorates a quantity change. "
            "Blank uses BILLFLOW_USAGE['DEFAULT_PRORATION_BEHAVIOR']."
        ),
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["metered", "licensed"]), name="bfu_metric_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(aggregation__in=["sum", "count", "last"]),
                name="bfu_metric_aggregation_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    proration_behavior__in=["", "create_prorations", "always_invoice", "none"]
                ),
                name="bfu_metric_proration_valid",
            ),
            models.UniqueConstraint(
                fields=["event_name"],
                condition=~Q(event_name=""),
                name="bfu_metric_event_name_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.key

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.event_name:
            self.event_name = self.key
        super().save(*args, **kwargs)

    @property
    def is_metered(self) -> bool:
        return self.kind == self.Kind.METERED

    @property
    def meter_event_name(self) -> str:
        """The event name Stripe's meter counts this metric's usage under: ``event_name``, or
        the key while none is stored (``save()`` stores it; an unsaved metric, or one written
        with ``update()``, may have none)."""
        return self.event_name or self.key

    def total_of(self, parts: Sequence[int]) -> int:
        """The metric's total over consecutive spans of time, from each span's total (oldest
        first), by its formula: their sum, or for ``last`` the latest span's (0 for none)."""
        if self.aggregation == self.Aggregation.LAST:
            return parts[-1] if parts else 0
        return sum(parts)
