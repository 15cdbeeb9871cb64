"""Seat trackers (``track_quantity``): keep a licensed metric's desired quantity up to date.

Any save or delete of a tracked object marks its customer dirty for the metric (both
customers when an object moves from one to another). Inside the host's transaction the
customer's subscription item link is flagged ``quantity_stale``, once per customer and metric
per transaction. After the transaction commits, ``quantity(customer_id)`` is recomputed once
per customer and metric and stored with ``set_quantity()``, which clears the flag. So a
thousand membership changes in one transaction store one quantity, a member added and another
removed store the unchanged count, and a crash between the commit and the recompute leaves a
flag that :func:`refresh_stale_quantities` repairs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Unpack
from weakref import WeakKeyDictionary

from django.db import IntegrityError, router, transaction

from billflow_usage import commit_hooks
from billflow_usage.conf import billflow_settings
from billflow_usage.customers import ResolvedCustomer, resolve_customer
from billflow_usage.ledger import set_quantity
from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.redaction import exception_text, traceback_text
from billflow_usage.tracking.base import UPDATE, Change, Tracker
from billflow_usage.tracking.guard import guarded
from billflow_usage.tracking.options import TrackQuantityOptions
from billflow_usage.tracking.resolvers import Resolver
from billflow_usage.tracking.snapshots import as_loaded

if TYPE_CHECKING:
    from billflow_usage.tracking.registry import TrackerRegistry

logger = logging.getLogger(__name__)


class QuantityTracker(Tracker):
    """Recomputes a customer's seat count after any change to the objects that make it."""

    kind = Metric.Kind.LICENSED
    ledger_model = SubscriptionItemLink
    declared_with = "track_quantity"

    def __init__(self, model: object, **options: Unpack[TrackQuantityOptions]) -> None:
        super().__init__(model, metric=options["metric"], customer=options["customer"])
        self.quantity = Resolver(options["quantity"])

    def resolvers(self) -> dict[str, Resolver]:
        return {**super().resolvers(), "quantity": self.quantity}

    @property
    def needs_delete(self) -> bool:
        return True

    @property
    def needs_snapshots(self) -> bool:
        return True

    def handle(self, change: Change) -> None:
        guarded(self.db, lambda: self._mark(change), lambda exc: self._log_failure(change, exc))

    def store(self, customer_id: str) -> None:
        """Recompute and store one customer's quantity, and clear its stale flag."""
        metric = self.get_metric()
        if metric is None:
            return
        links = SubscriptionItemLink.objects.using(self.db).filter(
            customer_id=customer_id, metric=metric, active=True
        )
        with transaction.atomic(using=self.db):
            # Count under the link's lock: a concurrent recompute then either ran before us
            # (and we store the newer count) or waits and counts again after us.
            list(links.select_for_update().values_list("pk", flat=True))
            set_quantity(metric, customer_id, self.quantity(customer_id))
            links.update(quantity_stale=False)

    def _mark(self, change: Change) -> None:
        metric = self.get_metric()
        if metric is not None:
            for customer in self._customers(change):
                _mark_dirty(self, metric, customer)

    def _customers(self, change: Change) -> list[ResolvedCustomer]:
        """The customer of the object now and, if it moved, the one it had before."""
        instances = [change.instance]
        if change.action == UPDATE:
            before = as_loaded(change.instance, change.loaded)
            if before is not None:
                instances.append(before)
        found: dict[str, ResolvedCustomer] = {}
        for instance in instances:
            customer = self.customer(instance)
            if customer is not None:
                resolved = resolve_customer(customer)
                found.setdefault(resolved.id, resolved)
        return list(found.values())

    def _log_failure(self, change: Change, exc: Exception) -> None:
        instance = change.instance
        logger.error(
            "%r could not mark the customer of %s %s after its %s (%s); the quantity is "
            "recomputed at the customer's next change or by billflow_sync.\n%s",
            self,
            instance._meta.label,
            instance.pk,
            change.action,
            exception_text(exc),
            traceback_text(exc),
        )


class _Pending:
    """The customers whose seats changed in one transaction, stored once it commits."""

    def __init__(self) -> None:
        self.customers: dict[tuple[str, str], QuantityTracker] = {}
        self.flushed = False

    def flush(self) -> None:
        self.flushed = True
        for (_, customer_id), tracker in self.customers.items():
            _store_logged(tracker, customer_id)


#: Per database connection (so per thread): the transaction's pending seat changes.
_pending: WeakKeyDictionary[Any, _Pending] = WeakKeyDictionary()


def _mark_dirty(tracker: QuantityTracker, metric: Metric, customer: ResolvedCustomer) -> None:
    using = tracker.db
    connection = transaction.get_connection(using)
    pending = _pending.get(connection)
    new = (
        pending is None
        or pending.flushed
        # Rolling back a savepoint drops the callbacks registered inside it (the changes
        # made there are gone too): the next change must schedule a new flush.
        or not commit_hooks.is_pending(connection, pending.flush)
    )
    if pending is None or new:
        pending = _pending[connection] = _Pending()
    key = (metric.key, customer.id)
    if key not in pending.customers:
        pending.customers[key] = tracker
        _flag_stale(metric, customer, using)
    if new:
        # After the flag: outside any transaction on_commit runs at once.
        transaction.on_commit(pending.flush, using=using, robust=True)


def _flag_stale(metric: Metric, customer: ResolvedCustomer, using: str) -> None:
    """Flag the customer's link, creating it if missing, inside the host's transaction."""
    links = SubscriptionItemLink.objects.using(using).filter(
        customer_id=customer.id, metric=metric, active=True
    )
    if links.update(quantity_stale=True):
        return
    livemode = billflow_settings.livemode if customer.livemode is None else customer.livemode
    try:
        with transaction.atomic(using=using):
            links.create(
                customer_id=customer.id,
                metric=metric,
                active=True,
                quantity_stale=True,
                livemode=livemode,
            )
    except IntegrityError:
        # Another transaction created the link first.
        links.update(quantity_stale=True)


def _store_logged(tracker: QuantityTracker, customer_id: str) -> bool:
    try:
        tracker.store(customer_id)
    except Exception as exc:
        logger.error(
            "%r could not store the quantity of %s (%s); it stays stale until "
            "refresh_stale_quantities() succeeds.\n%s",
            tracker,
            customer_id,
            exception_text(exc),
            traceback_text(exc),
        )
        return False
    return True


def refresh_stale_quantities(registry: TrackerRegistry | None = None) -> int:
    """Recompute the seat quantities still flagged stale; returns how many were stored.

    A flag outlives its transaction only when the process stopped between the commit and the
    recompute, or the recompute failed: workers and ``billflow_sync`` call this to repair it.
    """
    if registry is None:
        from billflow_usage.tracking.registry import registry as default  # it imports us

        registry = default
    using = router.db_for_write(SubscriptionItemLink)
    stale = (
        SubscriptionItemLink.objects.using(using)
        .filter(quantity_stale=True, active=True, metric__active=True)
        .order_by()
        .values_list("customer_id", "metric__key")
        .distinct()
    )
    stored = 0
    for customer_id, key in stale:
        tracker = registry.quantity_tracker(key)
        if tracker is None:
            logger.warning(
                "The %r quantity of %s is stale, but no track_quantity() tracker declares "
                "that metric to recompute it.",
                key,
                customer_id,
            )
        elif _store_logged(tracker, customer_id):
            stored += 1
    return stored
