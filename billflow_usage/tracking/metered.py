"""Metered trackers (``track``): usage events for creates, updates and deletes of a model."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Unpack

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import models, router
from django.db.models import Q, Sum

from billflow_usage import validation
from billflow_usage.conf import billflow_settings
from billflow_usage.customers import ResolvedCustomer, resolve_customer
from billflow_usage.exceptions import IdentifierConflict, InvalidUsage, UnknownMetric
from billflow_usage.identifiers import new_identifier
from billflow_usage.ledger import (
    LEGACY_METER_API,
    Usage,
    event_values,
    record_usage,
    record_usage_bulk,
    store_values,
)
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.models.limits import IDENTIFIER_MAX_LENGTH
from billflow_usage.redaction import (
    MAX_MESSAGE,
    exception_text,
    excerpt,
    redact,
    traceback_text,
)
from billflow_usage.tracking.base import ACTIONS, CREATE, DELETE, Change, Tracker
from billflow_usage.tracking.guard import guarded
from billflow_usage.tracking.identifiers import tracker_identifier
from billflow_usage.tracking.options import Number, TrackOptions
from billflow_usage.tracking.resolvers import Resolver, optional_resolver
from billflow_usage.tracking.snapshots import saved_value

logger = logging.getLogger(__name__)

TRACKER_ERROR = "tracker_error"
#: A failed row of a tracker whose metric doesn't exist (it has no metric either).
UNKNOWN_METRIC = "unknown_metric"
#: A tracker's failures: usage it could not record as billable (its metric missing, or it
#: raised). Such a row is recorded again once the cause is fixed, never retried.
TRACKER_FAILURES = (TRACKER_ERROR, UNKNOWN_METRIC)
SOURCE_DELETED = "source_deleted"
#: The customer of a failed row whose customer could not be resolved: the ledger only holds
#: ``cus_...`` IDs, and a failed row is never sent.
UNRESOLVED_CUSTOMER = "cus_unresolved"
NUMERIC_FIELDS = (models.IntegerField, models.DecimalField, models.FloatField)
#: How many identifiers of usage a reversal can't take back its warning names.
NAMED_IN_WARNING = 10


@dataclass
class _Attempt:
    """What a tracker had resolved when it failed, so the failed row keeps as much as it can."""

    metric: Metric | None = None
    customer: Any = None
    value: Any = None
    identifier: str | None = None


class MeteredTracker(Tracker):
    """Records usage of a metered metric when objects of a model are saved or deleted.

    Identifiers are derived from the change they record, so a change seen twice (the
    one-by-one fallback of a bulk creation, a retried dispatch) is recorded once, and they are
    unique per change and per installation, so a new change never takes the identifier of
    another. Each hashes the installation's namespace, the metric, the model, the key (the
    object's pk, or what ``identifier(instance)`` returns), the action, the change's serial
    (drawn once per save or delete, shared by all trackers of it, and by
    ``bulk_create_with_usage()`` and its one-by-one fallback) and the customer (resolved
    first). So:

    - create: saving an object again is an update, so its creation is never recorded twice;
      a primary key that comes back (a restored row, a natural or explicit key) is a new
      creation, billed again. With ``identifier=``, the creation uses the returned string as
      it is, so usage the host recorded by hand under that key is not recorded again; like
      any caller's identifier it can't use a reserved prefix.
    - update and delete: each save or delete is its own event, even two within one
      microsecond (a frozen clock in tests, a coarse one).
    - reversal (``reverse_on_delete``): one event per customer whose usage it offsets. Only
      sum meters can be offset by a negative event: on count and last meters (and with
      legacy usage records, which can't be negative) a reversal cancels what is certainly
      unsent and logs a warning naming the rest, which stays billed.

    A second tracker of the same model and metric adds its slot (its place in declaration
    order) to the version, so both are recorded.
    """

    kind = Metric.Kind.METERED
    ledger_model = UsageEvent
    declared_with = "track"

    def __init__(self, model: object, **options: Unpack[TrackOptions]) -> None:
        super().__init__(model, metric=options["metric"], customer=options["customer"])
        value = options.get("value", 1)
        self.value: Number | Resolver = (
            value if isinstance(value, int | float | Decimal) else Resolver(value)
        )
        on: object = options.get("on", (CREATE,))
        if isinstance(on, str) or not isinstance(on, Iterable):
            on = (on,)
        #: As declared (the checks report unknown actions); ``actions`` is what runs.
        self.on: tuple[Any, ...] = tuple(on)
        self.actions = frozenset(action for action in self.on if action in ACTIONS)
        self.when = optional_resolver(options.get("when"))
        self.timestamp = optional_resolver(options.get("timestamp"))
        self.identifier = optional_resolver(options.get("identifier"))
        self.delta = options.get("delta")
        self.reverse_on_delete = options.get("reverse_on_delete", False)

    def resolvers(self) -> dict[str, Resolver]:
        optional = {
            "value": self.value,
            "when": self.when,
            "timestamp": self.timestamp,
            "identifier": self.identifier,
        }
        found = {name: r for name, r in optional.items() if isinstance(r, Resolver)}
        return {**super().resolvers(), **found}

    @property
    def needs_delete(self) -> bool:
        return DELETE in self.actions or self.reverse_on_delete

    @property
    def needs_snapshots(self) -> bool:
        return self.delta is not None

    @property
    def preload_attnames(self) -> tuple[str, ...]:
        if self.delta is None:
            return ()
        try:
            return (self.delta_field().attname,)
        except (LookupError, TypeError):
            return ()

    def delta_field(self) -> models.Field[Any, Any]:
        """The numeric field a delta tracker follows; raises if there is none."""
        if self.model is None or self.delta is None:
            raise LookupError(f"{self!r} has no model field to follow.")
        try:
            field = self.model._meta.get_field(self.delta)
        except FieldDoesNotExist:
            raise LookupError(
                f"{self.model._meta.label} has no field {self.delta!r} to follow."
            ) from None
        if not isinstance(field, NUMERIC_FIELDS):
            raise TypeError(
                f"delta={self.delta!r} names a {type(field).__name__}, not a numeric field."
            )
        return field

    def handle(self, change: Change) -> None:
        reverse = change.action == DELETE and self.reverse_on_delete
        if not reverse and change.action not in self.actions:
            return
        attempt = _Attempt()

        def keep(exc: Exception) -> None:
            self._keep_failure(change, attempt, exc)

        if reverse:
            guarded(self.db, lambda: self._reverse(change, attempt), keep)
        else:
            self._record(change, attempt, keep)

    def usage_for(self, change: Change, attempt: _Attempt | None = None) -> Usage | None:
        """What to record for ``change``, or None when there is nothing to record.

        Runs the resolvers: ``when`` filters, a value of None (or an unchanged delta) and a
        customer of None skip. A metric that doesn't exist (or is licensed) raises once the
        resolvers have run, so the failed row keeps what the usage would have been.
        """
        attempt = attempt or _Attempt()
        try:
            metric = attempt.metric = self.get_metric()
        except InvalidUsage:
            if self._resolve(change, attempt) is None:
                return None  # nothing would have been recorded: nothing is lost
            raise
        if metric is None:
            return None  # inactive
        resolved = self._resolve(change, attempt)
        if resolved is None:
            return None
        value, customer, identifier = resolved
        instance = change.instance
        timestamp = change.moment if self.timestamp is None else self.timestamp(instance)
        return Usage(metric, customer, value, timestamp, identifier, instance)

    def _resolve(
        self, change: Change, attempt: _Attempt
    ) -> tuple[Any, ResolvedCustomer, str] | None:
        """The value, customer and identifier of the usage (None: nothing to record)."""
        instance = change.instance
        if self.when is not None and not self.when(instance, change.created):
            return None
        value = attempt.value = self._value(change)
        if value is None:
            return None
        customer = attempt.customer = self.customer(instance)
        if customer is None:
            logger.debug(
                "%r skipped the %s of %s %s: its customer is None.",
                self,
                change.action,
                instance._meta.label,
                instance.pk,
            )
            return None
        resolved = attempt.customer = resolve_customer(customer)
        identifier = attempt.identifier = self._identifier(change, resolved.id)
        return value, resolved, identifier

    def _record(self, change: Change, attempt: _Attempt, keep: Callable[[Exception], None]) -> None:
        """Resolve and validate (guarded, and without SQL for resolvers that only read the
        instance, so without a savepoint), then write the row with one unguarded INSERT.

        A repeated identifier makes the INSERT a no-op (with other content, a failed row), and
        a database error there means the host's transaction can't record the usage: raising
        it fails the host's save rather than losing the unit.
        """
        using = self.db
        prepared = guarded(using, lambda: self._prepare(change, attempt), keep)
        if prepared is not None:
            usage, values = prepared
            try:
                store_values(values, timestamp_given=usage.timestamp is not None, using=using)
            except IdentifierConflict as exc:
                keep(exc)

    def _prepare(self, change: Change, attempt: _Attempt) -> tuple[Usage, dict[str, Any]] | None:
        """The usage and its ledger row's values: validated, no model instance made."""
        usage = self.usage_for(change, attempt)
        if usage is None:
            return None
        metric = usage.metric if isinstance(usage.metric, Metric) else None
        return usage, event_values(usage, metric=metric)

    def _value(self, change: Change) -> Any:
        if self.delta is None:
            return self.value(change.instance) if isinstance(self.value, Resolver) else self.value
        return self._delta(change) or None

    def _delta(self, change: Change) -> Any:
        """How much the field changed: from nothing on create, to nothing on delete."""
        field = self.delta_field()
        instance, old_values = change.instance, change.loaded
        if change.action == DELETE:
            known = field.attname in old_values
            old = old_values[field.attname] if known else getattr(instance, field.attname)
            return -(old or 0)
        new = saved_value(instance, field.attname, change.using) or 0
        if change.action == CREATE:
            return new
        if change.update_fields is not None and field.name not in change.update_fields:
            return 0
        if field.attname not in old_values:
            raise LookupError(
                f"the value {field.name!r} had before this save is unknown, so the change "
                "can't be computed."
            )
        return new - (old_values[field.attname] or 0)

    def _own_key(self, instance: models.Model) -> Any:
        """What ``identifier(instance)`` returns; None without one (the pk is used then)."""
        return None if self.identifier is None else self.identifier(instance)

    def _identifier(self, change: Change, customer_id: str) -> str:
        instance = change.instance
        own = self._own_key(instance)
        if own is not None and change.action == CREATE:
            return str(own)
        return self._hash(instance, own, change.action, change.serial, customer_id)

    def _hash(
        self, instance: models.Model, own: Any, action: str, serial: str, customer_id: str
    ) -> str:
        version = f"{serial}#{self.slot}" if self.slot else serial
        key = instance.pk if own is None else own
        label = instance._meta.label_lower
        return tracker_identifier(
            self.metric, label, key, action, version, customer_id, using=self.db
        )

    def _reverse(self, change: Change, attempt: _Attempt) -> None:
        """Undo what the deleted object billed for this metric.

        Rows certainly not sent yet (pending and never attempted, or failed) are cancelled;
        what may have reached Stripe is offset by one negative event per customer, on a sum
        meter; on others (or with legacy usage records) it stays billed, with a warning.
        """
        metric = attempt.metric = self.get_metric()
        if metric is None:
            return
        instance = change.instance
        rows = UsageEvent.objects.using(self.db).filter(
            metric=metric,
            source_content_type=ContentType.objects.get_for_model(instance),
            source_object_id=str(instance.pk),
        )
        never_tried = Q(status=UsageEvent.Status.PENDING, attempts=0, claimed_until__isnull=True)
        unsent = never_tried | Q(status=UsageEvent.Status.FAILED)
        rows.filter(unsent).cancel(
            last_error_code=SOURCE_DELETED,
            last_error_message=f"{instance._meta.label} {instance.pk} was deleted before "
            "this usage was sent.",
        )
        billed = rows.filter(status__in=[UsageEvent.Status.PENDING, UsageEvent.Status.SENT])
        cannot_offset = _why_not_offset(metric)
        if cannot_offset is not None:
            self._warn_not_reversed(change, billed, cannot_offset)
            return
        net_by_customer = (
            billed.order_by()
            .values("customer_id")
            .annotate(net=Sum("value"))
            .values_list("customer_id", "net")
        )
        own = self._own_key(instance)
        for customer_id, net in net_by_customer:
            if net:
                record_usage(
                    metric,
                    customer_id,
                    -net,
                    timestamp=change.moment,
                    identifier=self._hash(instance, own, "reverse", change.serial, customer_id),
                    source=instance,
                )

    def _warn_not_reversed(
        self, change: Change, billed: models.QuerySet[UsageEvent], reason: str
    ) -> None:
        """Usage that may have reached Stripe and can't be offset stays billed: say so, with
        what to cancel."""
        count = billed.count()
        if not count:
            return
        first = billed.order_by("pk").values_list("identifier", flat=True)[:NAMED_IN_WARNING]
        named = ", ".join(map(repr, first))
        more = count - NAMED_IN_WARNING
        instance = change.instance
        logger.warning(
            "%r: %s %s was deleted, but %d event(s) of its usage may have reached Stripe and "
            "stay billed (%s%s): %s. Cancel them in the admin within 24 hours of sending, or "
            "credit the customer.",
            self,
            instance._meta.label,
            instance.pk,
            count,
            named,
            f" and {more} more" if more > 0 else "",
            reason,
        )

    def _keep_failure(self, change: Change, attempt: _Attempt, exc: Exception) -> None:
        """Log a failure and keep it as a failed ledger row, so no usage is silently lost
        (without a metric when the tracker's doesn't exist).

        The exception is the host's (a resolver's): its text is redacted and capped, on the
        row and in the log, whose traceback is written redacted too (not as ``exc_info``).
        """
        message = self._failure_message(change, attempt, exc)
        code = UNKNOWN_METRIC if isinstance(exc, UnknownMetric) else TRACKER_ERROR
        logger.error("%s Kept as a failed ledger row.\n%s", message, traceback_text(exc))
        guarded(
            self.db,
            lambda: self._save_failure(change, attempt, code, message),
            lambda error: logger.error(
                "%r could not keep its failed ledger row: %s\n%s",
                self,
                exception_text(error),
                traceback_text(error),
            ),
        )

    def _failure_message(self, change: Change, attempt: _Attempt, exc: Exception) -> str:
        """What failed and what to do, within ``MAX_MESSAGE``: the exception's text is cut
        first, so the advice always stays."""
        advice = ". Once the cause is fixed, record it with record_usage(..., source=<the object>)"
        if attempt.identifier:
            shown = excerpt(attempt.identifier, IDENTIFIER_MAX_LENGTH)
            advice += f"; the tracker would have recorded it as {shown}"
        advice = redact(advice + ".")
        instance = change.instance
        failure = (
            f"{self!r} failed on the {change.action} of {instance._meta.label} {instance.pk}: "
            f"{exception_text(exc)}"
        )
        return redact(failure, limit=MAX_MESSAGE - len(advice)).rstrip(".") + advice

    def _save_failure(self, change: Change, attempt: _Attempt, code: str, message: str) -> None:
        try:
            customer_id = resolve_customer(attempt.customer).id
        except InvalidUsage:
            customer_id = UNRESOLVED_CUSTOMER
        try:
            value = validation.whole_number(attempt.value)
        except InvalidUsage:
            value = 0
        UsageEvent(
            metric=attempt.metric,
            customer_id=customer_id,
            value=value,
            occurred_at=change.moment,
            identifier=new_identifier(),
            source=change.instance,
            livemode=billflow_settings.livemode,
            status=UsageEvent.Status.FAILED,
            last_error_code=code,
            last_error_message=message,
            next_attempt_at=change.moment,
        ).save(force_insert=True, using=self.db)


def _why_not_offset(metric: Metric) -> str | None:
    """Why usage of ``metric`` can't be taken back with a negative event, if it can't."""
    if metric.aggregation != Metric.Aggregation.SUM:
        return (
            f"{metric.key!r} is a {metric.aggregation} metric, and a {metric.aggregation} meter "
            "can't be offset by a negative event"
        )
    if billflow_settings.METER_API == LEGACY_METER_API:
        return "legacy usage records can't be negative"
    return None


def record_created(trackers: Sequence[MeteredTracker], changes: Sequence[Change]) -> None:
    """Record the creation of bulk-created objects with one ``record_usage_bulk()`` call.

    Identifiers are those the ``post_save`` path would use. If anything fails, the batch is
    rolled back to its savepoint and each object goes through :meth:`MeteredTracker.handle`,
    which keeps failures as failed rows exactly as for single saves.
    """
    pending = [(t, change) for t in trackers if CREATE in t.actions for change in changes]
    if not pending:
        return

    def record_all() -> None:
        usages = [usage for t, change in pending if (usage := t.usage_for(change)) is not None]
        record_usage_bulk(usages)

    def one_by_one(exc: Exception) -> None:
        logger.warning(
            "Recording %d bulk-created usages at once failed (%s); recording them one by one.",
            len(pending),
            exception_text(exc),
        )
        for t, change in pending:
            t.handle(change)

    guarded(router.db_for_write(UsageEvent), record_all, one_by_one)
