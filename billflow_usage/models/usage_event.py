from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Self

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Count, F, Q, Sum, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billflow_usage.models.limits import (
    CUSTOMER_PREFIX,
    IDENTIFIER_MAX_LENGTH,
    MAX_VALUE,
    STRIPE_ID_MAX_LENGTH,
)
from billflow_usage.models.metric import Metric
from billflow_usage.models.tally import Tally


class UsageEventQuerySet(models.QuerySet["UsageEvent"]):
    """The ledger's figures as Stripe computes them, for everything that counts usage:
    ``billflow_sync`` comparing with Stripe, the admin's usage page, the delivery of legacy
    usage records, and a customer's usage in the billing period."""

    def with_billed_at(self) -> Self:
        """Annotate ``billed_at``: when Stripe files each row. A row aggregated into a
        delivery group reaches Stripe as the group's event, at the group's time."""
        return self.annotate(billed_at=Coalesce(F("group__occurred_at"), F("occurred_at")))

    def billed_between(self, start: datetime, end: datetime) -> Self:
        """Rows Stripe files in ``[start, end)``, annotated with ``billed_at``."""
        return self.with_billed_at().filter(billed_at__gte=start, billed_at__lt=end)

    def usage(self) -> Self:
        """Rows that stand for usage: not cancelled, and not ``billflow_sync``'s corrections
        (they only exist to make Stripe's total equal the usage recorded)."""
        # Imported here: identifiers reads the installation's namespace from the models.
        from billflow_usage.identifiers import CORRECTION_PREFIX

        return self.exclude(status=UsageEvent.Status.CANCELLED).exclude(
            identifier__startswith=CORRECTION_PREFIX
        )

    def cancel(self, **fields: Any) -> int:
        """Mark these rows cancelled (with ``fields``, e.g. the reason), and recount the
        hourly totals of those already folded, so current usage drops them exactly. Every
        cancellation goes through here. Returns how many rows changed."""
        from billflow_usage.models.usage_total import hour_of, recompute_hours

        using = self.db
        pks = list(self.values_list("pk", flat=True))
        if not pks:
            return 0
        with transaction.atomic(using=using):
            # The UPDATE keeps this queryset's conditions, evaluated as it locks each row.
            changed = self.filter(pk__in=pks).update(status=UsageEvent.Status.CANCELLED, **fields)
            # Read after the UPDATE waited for any fold holding these rows.
            folded = UsageEvent.objects.using(using).filter(
                pk__in=pks, status=UsageEvent.Status.CANCELLED, folded=True, metric__isnull=False
            )
            keys = {
                (metric, customer, hour_of(at))
                for metric, customer, at in folded.values_list(
                    "metric_id", "customer_id", "occurred_at"
                )
            }
            recompute_hours(keys, using)
        return changed

    def totals_by_formula(self, *keys: str) -> dict[tuple[Any, ...], int]:
        """Each metric's total (per value of ``keys``, fields or annotations) by the metric's
        formula, as its Stripe meter computes it: ``sum`` adds the values, ``count`` counts
        the rows, ``last`` takes the value of the row billed last (of two billed at the same
        moment, the one recorded last). Keyed by ``(metric_id, *keys)``; groups without rows
        are absent. Only these rows: the daily rollups of compacted days are added by
        :func:`billflow_usage.models.usage_totals.usage_totals`."""
        return {key: tally.value for key, tally in self.tallies(*keys).items()}

    def tallies(self, *keys: str) -> dict[tuple[Any, ...], Tally]:
        """:meth:`totals_by_formula`'s groups as :class:`Tally` (sum, count, and for ``last``
        metrics the last row), which add up with other rows' and with rollups.

        At most two queries whatever the number of rows: sums and counts grouped in the
        database, and for ``last`` metrics, only when the rows have some, each group's latest
        row found by a window function.
        """
        rows = self.with_billed_at().order_by()
        group = ("metric_id", *keys)
        tallies: dict[tuple[Any, ...], Tally] = {}
        grouped = rows.values_list(*group, "metric__aggregation").annotate(
            total=Sum("value"), events=Count("pk")
        )
        for *key, formula, total, events in grouped:
            tallies[tuple(key)] = Tally(formula, total, events)
        if any(tally.formula == Metric.Aggregation.LAST for tally in tallies.values()):
            latest = (
                rows.filter(metric__aggregation=Metric.Aggregation.LAST)
                .annotate(
                    rank=Window(
                        RowNumber(),
                        partition_by=[F(name) for name in group],
                        order_by=[F("billed_at").desc(), F("pk").desc()],
                    )
                )
                .filter(rank=1)
                .values_list(*group, "value", "billed_at", "pk")
            )
            for *key, value, billed_at, pk in latest:
                found = tallies[tuple(key)]
                tallies[tuple(key)] = replace(
                    found, last_value=value, last_at=billed_at, last_id=pk
                )
        return tallies


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
    #: No index of its own: the reconcile index leads with the customer, and the queries by
    #: metric alone (failed rows, a metric's deletion) are rare (docs/benchmarks.md).
    metric = models.ForeignKey(
        Metric,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="usage_events",
        db_index=False,
    )
    customer_id = models.CharField(max_length=STRIPE_ID_MAX_LENGTH)
    value = models.BigIntegerField()
    occurred_at = models.DateTimeField(default=timezone.now)
    #: Unique by a constraint (bfu_event_identifier_unique), not ``unique=True``, which on
    #: PostgreSQL adds a second, LIKE index that no query uses.
    identifier = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    #: Indexed as the prefix of bfu_event_source_idx only, and without a database
    #: constraint, whose check costs every tracked save a lookup at commit: the library only
    #: stores IDs ``ContentType.objects.get_for_model()`` gave, and Django's own SET_NULL
    #: empties the column when a content type is deleted (docs/benchmarks.md). The metric
    #: and the group, which say what is billed, keep theirs.
    source_content_type = models.ForeignKey(
        ContentType,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
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
    #: Set when aggregation sent this row as part of one Stripe event (indexed where set:
    #: bfu_event_group_idx).
    group = models.ForeignKey(
        "billflow_usage.DeliveryGroup",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
    )
    last_error_code = models.CharField(max_length=100, blank=True)
    last_error_message = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    #: Counted in its hour's ``UsageHourTotal`` by the folding step (never by the INSERT that
    #: records it: the database default lets that INSERT leave the column out).
    folded = models.BooleanField(default=False, db_default=False, editable=False)

    objects = UsageEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("usage event")
        constraints = [
            models.UniqueConstraint(fields=["identifier"], name="bfu_event_identifier_unique"),
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
            # billflow_status and the metrics: failed rows by code, without a ledger scan.
            models.Index(
                fields=["last_error_code"],
                condition=Q(status="failed"),
                name="bfu_event_failed_idx",
            ),
            # A group's members (few rows have a group: the index holds only those).
            models.Index(
                fields=["group"], condition=Q(group__isnull=False), name="bfu_event_group_idx"
            ),
            # Rows not folded into hourly totals yet: few, and read live by current_usage.
            models.Index(
                fields=["customer_id", "metric", "occurred_at"],
                condition=Q(folded=False),
                name="bfu_event_unfolded_idx",
            ),
        ]

    def __str__(self) -> str:
        metric = self.metric_key or "no metric"
        return f"{self.identifier}: {self.value} x {metric} for {self.customer_id}"

    @property
    def metric_key(self) -> str:
        """The metric's key ("" on a failed row kept without a metric)."""
        return "" if self.metric is None else self.metric.key
