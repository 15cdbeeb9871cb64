"""The ledger API: ``record_usage``, ``record_usage_bulk`` and ``set_quantity``.

Everything here runs inside the caller's transaction and never touches the network, so a
rolled-back request records nothing and a committed one keeps its usage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from billflow_usage import ledger_rows, validation
from billflow_usage.conf import billflow_settings
from billflow_usage.customers import resolve_customer
from billflow_usage.delivery.trigger import schedule_delivery
from billflow_usage.exceptions import IdentifierConflict, InvalidUsage
from billflow_usage.identifiers import new_identifier
from billflow_usage.metrics import get_metric
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.redaction import redact
from billflow_usage.signals import usage_recorded

logger = logging.getLogger("billflow_usage")

#: The ``METER_API`` of legacy usage records, which take neither negative nor future usage.
LEGACY_METER_API = "legacy"
#: Databases whose dialect has ``INSERT ... ON CONFLICT (column) DO NOTHING RETURNING``
#: (SQLite from 3.35, which ``can_return_columns_from_insert`` tells).
INSERT_RETURNING_VENDORS = ("postgresql", "sqlite")


@dataclass(frozen=True)
class Usage:
    """One item for :func:`record_usage_bulk`: the same arguments as :func:`record_usage`."""

    metric: Metric | str
    customer: Any
    value: Any = 1
    timestamp: datetime | None = None
    identifier: str | None = None
    source: models.Model | None = None


def record_usage(
    metric: Metric | str,
    customer: Any,
    value: Any = 1,
    *,
    timestamp: datetime | None = None,
    identifier: str | None = None,
    source: models.Model | None = None,
    enforce_limit: bool = False,
) -> UsageEvent:
    """Add ``value`` units of a metered ``metric`` for ``customer`` to the ledger.

    Repeating a call with the same ``identifier`` and content returns the row already
    recorded, so retries are safe; the same identifier with other content raises
    :class:`~billflow_usage.exceptions.IdentifierConflict`.

    With ``enforce_limit=True`` the customer's ``UsageLimit`` is checked and the usage
    recorded atomically: past a hard limit it raises
    :class:`~billflow_usage.exceptions.LimitExceeded` and records nothing.
    """
    event = build_event(Usage(metric, customer, value, timestamp, identifier, source))
    if enforce_limit:
        # Imported here: limits build on the ledger, and plain recording never needs them.
        from billflow_usage.usage_limits.enforcement import store_within_limit

        return store_within_limit(event, timestamp_given=timestamp is not None)
    return store_event(event, timestamp_given=timestamp is not None)


def record_usage_bulk(
    usages: Iterable[Usage | Mapping[str, Any]], *, batch_size: int = 1000
) -> list[UsageEvent]:
    """Record many usages in one transaction, for ``bulk_create`` and import paths.

    All items are validated first: one bad item raises (naming its position) and nothing is
    recorded. Returns the ledger rows in input order; repeated identifiers behave as in
    :func:`record_usage`.
    """
    now = timezone.now()
    metrics: dict[str, Metric] = {}
    wanted: dict[str, tuple[UsageEvent, bool]] = {}
    order: list[str] = []
    for index, item in enumerate(usages):
        usage = item if isinstance(item, Usage) else _usage_from_mapping(item, index)
        try:
            key = usage.metric.key if isinstance(usage.metric, Metric) else usage.metric
            known = metrics.get(key) if isinstance(key, str) else None
            metric = known or get_metric(usage.metric, kind=Metric.Kind.METERED)
            event = build_event(usage, now=now, metric=metric)
        except InvalidUsage as exc:
            raise type(exc)(f"usage #{index}: {exc}") from exc
        metrics[metric.key] = metric
        timestamp_given = usage.timestamp is not None
        if event.identifier in wanted:
            _check_same_content(wanted[event.identifier][0], event, timestamp_given)
        else:
            wanted[event.identifier] = (event, timestamp_given)
        order.append(event.identifier)

    using = router.db_for_write(UsageEvent)
    stored: dict[str, UsageEvent] = {}
    with transaction.atomic(using=using):
        for chunk in _chunks(list(wanted), batch_size):
            stored.update(_store_chunk(chunk, wanted, using))
    pending = [e.pk for e in stored.values() if e.status == UsageEvent.Status.PENDING]
    if pending:
        schedule_delivery(using=using, event_ids=pending)
    return [stored[identifier] for identifier in order]


def set_quantity(metric: Metric | str, customer: Any, quantity: Any) -> SubscriptionItemLink:
    """Store ``quantity`` as the desired seat count of ``customer`` for a licensed metric.

    Setting the quantity it already has changes nothing, so repeated calls push once.
    """
    found = get_metric(metric, kind=Metric.Kind.LICENSED)
    resolved = resolve_customer(customer)
    quantity = validation.whole_number(quantity, name="quantity", minimum=0)
    livemode = billflow_settings.livemode if resolved.livemode is None else resolved.livemode
    using = router.db_for_write(SubscriptionItemLink)
    with transaction.atomic(using=using):
        link, _ = (
            SubscriptionItemLink.objects.using(using)
            .select_for_update()
            .get_or_create(
                customer_id=resolved.id, metric=found, active=True, defaults={"livemode": livemode}
            )
        )
        if link.change_quantity(quantity):
            link.save(update_fields=SubscriptionItemLink.QUANTITY_FIELDS)
    if link.quantity_version > link.synced_version:
        schedule_delivery(using=using, link_ids=[link.pk])
    return link


def build_event(
    usage: Usage, *, now: datetime | None = None, metric: Metric | None = None
) -> UsageEvent:
    """Validate one usage and return its unsaved ledger row (no query for a ``Metric`` and a
    ``cus_...`` ID: trackers build their row before touching the database)."""
    metric = metric or get_metric(usage.metric, kind=Metric.Kind.METERED)
    event = UsageEvent(**event_values(usage, now=now, metric=metric))
    event.metric = metric  # known: reading it costs no query
    if event.source_content_type_id is not None:
        event.source_content_type = ContentType.objects.get_for_id(event.source_content_type_id)
    return event


def event_values(
    usage: Usage, *, now: datetime | None = None, metric: Metric | None = None
) -> dict[str, Any]:
    """Validate one usage and return its ledger row's values by attname, as
    :func:`store_values` takes them (what :func:`build_event` makes its instance from)."""
    now = now or timezone.now()
    metric = metric or get_metric(usage.metric, kind=Metric.Kind.METERED)
    customer = resolve_customer(usage.customer)
    legacy = billflow_settings.METER_API == LEGACY_METER_API
    occurred_at = (
        now
        if usage.timestamp is None
        else validation.timestamp(usage.timestamp, now=now, legacy=legacy)
    )
    values: dict[str, Any] = {
        "metric_id": metric.pk,
        "customer_id": customer.id,
        "value": validation.meter_value(usage.value, aggregation=metric.aggregation, legacy=legacy),
        "occurred_at": occurred_at,
        "identifier": new_identifier()
        if usage.identifier is None
        else validation.identifier(usage.identifier),
        "livemode": billflow_settings.livemode if customer.livemode is None else customer.livemode,
        "next_attempt_at": now,
    }
    if usage.source is not None:
        values.update(_source_values(usage.source))
    if validation.too_old_for_stripe(occurred_at, now=now):
        message = validation.too_old_message(occurred_at, now=now)
        values["status"] = UsageEvent.Status.FAILED
        values["last_error_code"] = validation.TOO_OLD_CODE
        values["last_error_message"] = message
        logger.warning("Usage %s recorded as failed: %s", values["identifier"], message)
    return values


def store_event(event: UsageEvent, *, timestamp_given: bool) -> UsageEvent:
    """Add a row made by :func:`build_event` to the ledger and return it, or the row already
    recorded under its identifier (raising IdentifierConflict if that one has other content).

    One statement, no savepoint: a repeated identifier is not an error the database has to
    recover from. A database error is raised: the transaction can't record the usage, so it
    must not carry on as if it had.
    """
    using = router.db_for_write(UsageEvent)
    stored = _insert_or_find(event, using)
    if stored is not event:
        _check_same_content(stored, event, timestamp_given)
        return stored
    _recorded(using, event.pk, event.status, lambda: event)
    return event


def store_values(values: dict[str, Any], *, timestamp_given: bool, using: str) -> int:
    """:func:`store_event` for a row given as values (:func:`event_values`): no model
    instance is made unless the identifier exists already or ``usage_recorded`` has
    receivers. Returns the row's id (the existing row's, for a safe retry)."""
    connection = connections[using]
    if not _returns_from_insert(connection):
        return store_event(UsageEvent(**values), timestamp_given=timestamp_given).pk
    pk = ledger_rows.insert_row(values, connection)
    if pk is None:
        existing = UsageEvent.objects.using(using).get(identifier=values["identifier"])
        _check_same_content(existing, UsageEvent(**values), timestamp_given)
        return existing.pk

    def instance() -> UsageEvent:
        event = UsageEvent(pk=pk, **values)
        event._state.adding = False
        event._state.db = using
        return event

    _recorded(using, pk, values.get("status", UsageEvent.Status.PENDING), instance)
    return pk


def _recorded(using: str, pk: int, status: str, event: Callable[[], UsageEvent]) -> None:
    """A new row is in the ledger: tell ``usage_recorded``'s receivers, plan its delivery."""
    if usage_recorded.has_listeners(UsageEvent):
        usage_recorded.send(sender=UsageEvent, event=event())
    if status == UsageEvent.Status.PENDING:
        schedule_delivery(using=using, event_ids=[pk])


def _returns_from_insert(connection: BaseDatabaseWrapper) -> bool:
    return (
        connection.vendor in INSERT_RETURNING_VENDORS
        and connection.features.can_return_columns_from_insert
    )


def _insert_or_find(event: UsageEvent, using: str) -> UsageEvent:
    """Insert ``event`` (and return it), or return the row that already has its identifier.

    PostgreSQL and SQLite do it in one ``INSERT ... ON CONFLICT (identifier) DO NOTHING
    RETURNING id`` (:mod:`billflow_usage.ledger_rows`): the id comes back only for a new
    row. Other databases insert in a savepoint and catch the duplicate.
    """
    connection = connections[using]
    rows = UsageEvent.objects.using(using)
    if not _returns_from_insert(connection):
        try:
            with transaction.atomic(using=using):
                event.save(force_insert=True, using=using)
        except IntegrityError:
            existing = rows.filter(identifier=event.identifier).first()
            if existing is None:
                raise
            return existing
        return event
    inserted = ledger_rows.insert_row(ledger_rows.row_values(event), connection)
    if inserted is None:
        return rows.get(identifier=event.identifier)
    event.pk = inserted
    event._state.adding = False
    event._state.db = using
    return event


def _source_values(source: models.Model) -> dict[str, Any]:
    if not isinstance(source, models.Model) or source.pk is None:
        raise InvalidUsage(
            f"source must be a saved model instance, got {source!r}; save it first or omit it."
        )
    return {
        "source_content_type_id": ContentType.objects.get_for_model(source).pk,
        "source_object_id": str(source.pk),
    }


def _usage_from_mapping(item: Mapping[str, Any], index: int) -> Usage:
    try:
        return Usage(**item)
    except TypeError as exc:
        raise InvalidUsage(
            f"usage #{index}: {redact(str(exc))}; pass Usage(...) objects or mappings with "
            "the keyword arguments of record_usage()."
        ) from exc


def _store_chunk(
    identifiers: list[str], wanted: dict[str, tuple[UsageEvent, bool]], using: str
) -> dict[str, UsageEvent]:
    """Insert the new rows of one chunk and return every row of it as stored."""
    rows = UsageEvent.objects.using(using)
    existing = rows.in_bulk(identifiers, field_name="identifier")
    new = [wanted[identifier][0] for identifier in identifiers if identifier not in existing]
    rows.bulk_create(new, ignore_conflicts=True)
    stored = rows.in_bulk(identifiers, field_name="identifier")
    for identifier in identifiers:
        event, timestamp_given = wanted[identifier]
        _check_same_content(stored[identifier], event, timestamp_given)
    for event in new:
        usage_recorded.send(sender=UsageEvent, event=stored[event.identifier])
    return stored


def _check_same_content(existing: UsageEvent, new: UsageEvent, timestamp_given: bool) -> None:
    """A repeated identifier is a safe retry only if it asks for exactly the same usage."""
    same = (
        existing.metric_id == new.metric_id
        and existing.customer_id == new.customer_id
        and existing.value == new.value
        and (not timestamp_given or existing.occurred_at == new.occurred_at)
    )
    if not same:
        raise IdentifierConflict(
            f"identifier {new.identifier!r} is already recorded as {existing.value} of "
            f"{existing.metric_key!r} for {existing.customer_id} at "
            f"{existing.occurred_at.isoformat()}, not {new.value} of {new.metric_key!r} "
            f"for {new.customer_id} at {new.occurred_at.isoformat()}; use a new identifier "
            "for new usage, or the same content to retry safely."
        )


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
