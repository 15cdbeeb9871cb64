"""``record_usage(..., enforce_limit=True)``: check the limit and record, atomically.

Under a limit, the check and the INSERT run while holding one small row lock, the
``UsageGate`` of the metric, customer and billing period: two requests at the edge of the
limit take turns, and the second sees the first's row (each statement of a READ COMMITTED
transaction reads what committed before it). The lock is held until the caller's transaction
ends. Usage without a limit takes no lock; usage recorded without ``enforce_limit`` takes
nothing at all (the hot path is unchanged).
"""

from __future__ import annotations

from dataclasses import replace

from django.db import router, transaction

from billflow_usage.exceptions import LimitExceeded
from billflow_usage.ledger import store_event
from billflow_usage.models import Metric, UsageEvent, UsageGate
from billflow_usage.periods import Period
from billflow_usage.usage_limits.checking import applicable_limit, status_of, usage_after
from billflow_usage.usage_limits.crossings import record_crossings
from billflow_usage.usage_limits.usage import billing_period, period_tally


def store_within_limit(event: UsageEvent, *, timestamp_given: bool) -> UsageEvent:
    """Store ``event`` (built by ``build_event``) unless a hard limit refuses it, raising
    :class:`LimitExceeded` with nothing written. A repeated identifier is a retry: it returns
    the stored row without a check."""
    metric = event.metric
    assert metric is not None  # build_event always sets it
    customer_id = event.customer_id
    limit = applicable_limit(metric, customer_id)
    if limit is None:
        return store_event(event, timestamp_given=timestamp_given)
    using = router.db_for_write(UsageEvent)
    with transaction.atomic(using=using):
        period = billing_period(metric, customer_id, event.occurred_at)
        _lock_gate(metric, customer_id, period, using)
        if UsageEvent.objects.using(using).filter(identifier=event.identifier).exists():
            return store_event(event, timestamp_given=timestamp_given)
        used = period_tally(metric, customer_id, period).by_formula(metric.aggregation)
        status = status_of(metric, customer_id, period, used, event.value, limit)
        if status.refuses:
            raise LimitExceeded(status)
        stored = store_event(event, timestamp_given=timestamp_given)
        after = usage_after(metric, used, event.value)
        record_crossings(metric, replace(status, used=after, exceeded=False), using=using)
    return stored


def _lock_gate(metric: Metric, customer_id: str, period: Period, using: str) -> None:
    """Take the gate of this metric, customer and period (created on first use)."""
    gates = UsageGate.objects.using(using)
    key = {"metric": metric, "customer_id": customer_id, "period_start": period.start}
    gates.bulk_create([UsageGate(**key)], ignore_conflicts=True)
    gates.select_for_update().get(**key)
