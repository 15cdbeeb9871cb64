"""Plan limits on metered usage, and the threshold crossings already announced."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billflow_usage.models.limits import CUSTOMER_PREFIX, STRIPE_ID_MAX_LENGTH
from billflow_usage.models.metric import Metric

#: What a new limit warns at, in percent of the limit.
DEFAULT_THRESHOLDS = (80, 100)


def default_thresholds() -> list[int]:
    return list(DEFAULT_THRESHOLDS)


def threshold_problem(thresholds: Any) -> str | None:
    """Why ``thresholds`` is not a list of whole percentages from 1 to 100, or None."""
    if not isinstance(thresholds, list):
        return f"thresholds must be a list of percentages such as [80, 100], not {thresholds!r}."
    wrong = [t for t in thresholds if isinstance(t, bool) or not isinstance(t, int)]
    wrong += [t for t in thresholds if isinstance(t, int) and not 1 <= t <= 100]
    if wrong:
        return (
            f"thresholds must be whole percentages from 1 to 100; {wrong[0]!r} is not "
            "(100 means the limit itself)."
        )
    if len(set(thresholds)) != len(thresholds):
        return "thresholds must not repeat a percentage."
    return None


class UsageLimit(models.Model):
    """How much of a metered metric a customer may use per billing period.

    The scope is a customer, a Stripe price (every customer subscribed to it), or neither
    (everyone); the most specific scope wins. A ``hard`` limit refuses usage recorded with
    ``enforce_limit=True`` (and views decorated with ``limited``) past it; a ``soft`` one only
    warns through ``usage_threshold_crossed``.
    """

    class Kind(models.TextChoices):
        SOFT = "soft", _("Soft (warn)")
        HARD = "hard", _("Hard (refuse)")

    metric = models.ForeignKey(
        Metric,
        on_delete=models.CASCADE,
        related_name="limits",
        limit_choices_to={"kind": Metric.Kind.METERED},
    )
    limit = models.BigIntegerField(help_text=_("Units per billing period (a whole number >= 0)."))
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.HARD)
    thresholds = models.JSONField(
        default=default_thresholds,
        blank=True,
        help_text=_("Percentages of the limit that send usage_threshold_crossed, e.g. [80, 100]."),
    )
    customer_id = models.CharField(
        max_length=STRIPE_ID_MAX_LENGTH,
        blank=True,
        help_text=_("Only this customer (cus_...). Leave blank for a price or everyone."),
    )
    stripe_price_id = models.CharField(
        max_length=STRIPE_ID_MAX_LENGTH,
        blank=True,
        help_text=_("Every customer subscribed to this price (price_...)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("usage limit")
        ordering = ["metric", "customer_id", "stripe_price_id"]
        constraints = [
            models.CheckConstraint(condition=Q(limit__gte=0), name="bfu_limit_not_negative"),
            models.CheckConstraint(
                condition=Q(kind__in=["soft", "hard"]), name="bfu_limit_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(customer_id="") | Q(stripe_price_id=""),
                name="bfu_limit_one_scope",
            ),
            models.UniqueConstraint(
                fields=["metric", "customer_id"],
                condition=~Q(customer_id=""),
                name="bfu_limit_one_per_customer",
            ),
            models.UniqueConstraint(
                fields=["metric", "stripe_price_id"],
                condition=~Q(stripe_price_id=""),
                name="bfu_limit_one_per_price",
            ),
            models.UniqueConstraint(
                fields=["metric"],
                condition=Q(customer_id="", stripe_price_id=""),
                name="bfu_limit_one_for_everyone",
            ),
        ]

    def __str__(self) -> str:
        scope = self.customer_id or self.stripe_price_id or "everyone"
        return f"{self.metric_id}: {self.limit} ({self.kind}) for {scope}"

    @property
    def scope(self) -> str:
        if self.customer_id:
            return "customer"
        return "price" if self.stripe_price_id else "everyone"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if isinstance(self.limit, int) and self.limit < 0:
            errors["limit"] = "A limit is a whole number of units >= 0 (0 allows no usage)."
        problem = threshold_problem(self.thresholds)
        if problem:
            errors["thresholds"] = problem
        if self.customer_id and not self.customer_id.startswith(CUSTOMER_PREFIX):
            errors["customer_id"] = "A Stripe customer ID starts with 'cus_'."
        if self.customer_id and self.stripe_price_id:
            errors["stripe_price_id"] = (
                "Give a customer or a price, not both: a customer's own limit already wins "
                "over its price's."
            )
        metric = Metric.objects.filter(pk=self.metric_id).first() if self.metric_id else None
        if metric is not None and not metric.is_metered:
            errors["metric"] = (
                f"Metric {metric.key!r} is licensed (seats): limits apply to metered metrics; "
                "cap seats in your own code before set_quantity()."
            )
        if errors:
            raise ValidationError(errors)


class UsageThresholdCrossing(models.Model):
    """A threshold of a limit that a customer's usage crossed in one billing period.

    Unique per metric, customer, period and threshold: whoever inserts it first (a request
    recording with ``enforce_limit``, or the folding step for trackers and bulk paths) sends
    ``usage_threshold_crossed`` after its commit; everyone else finds the row and sends nothing.
    """

    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="+")
    customer_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH)
    period_start = models.DateTimeField()
    threshold = models.PositiveSmallIntegerField()
    used = models.BigIntegerField()
    limit = models.BigIntegerField()
    crossed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("usage threshold crossing")
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "customer_id", "period_start", "threshold"],
                name="bfu_crossing_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} crossed {self.threshold}% of {self.metric_id}"


class UsageGate(models.Model):
    """The row ``record_usage(..., enforce_limit=True)`` locks per metric, customer and
    period, so two requests at the limit's edge check and record one after the other."""

    metric = models.ForeignKey(Metric, on_delete=models.CASCADE, related_name="+")
    customer_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH)
    period_start = models.DateTimeField()

    class Meta:
        verbose_name = _("usage gate")
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "customer_id", "period_start"], name="bfu_gate_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} / {self.metric_id} from {self.period_start:%Y-%m-%d}"
