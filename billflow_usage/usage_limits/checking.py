"""Which limit applies to a customer, and ``check_limit``: how much is left (never writes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from billflow_usage.customers import resolve_customer
from billflow_usage.metrics import get_metric
from billflow_usage.models import Metric, UsageLimit
from billflow_usage.periods import Period
from billflow_usage.usage_limits.usage import billing_period, period_tally

#: dj-stripe subscription statuses under which a customer counts as subscribed to a price.
SUBSCRIBED_STATUSES = ("active", "trialing", "past_due")


@dataclass(frozen=True)
class LimitStatus:
    """Where a customer stands against a metric's limit in the current billing period.

    ``limit``, ``remaining`` and ``kind`` are None when no limit applies (unlimited);
    ``exceeded`` says whether recording ``value`` more would go past the limit.
    """

    metric: str
    customer_id: str
    used: int
    limit: int | None
    remaining: int | None
    exceeded: bool
    kind: str | None
    period_start: datetime
    period_end: datetime
    thresholds: tuple[int, ...] = ()

    @property
    def refuses(self) -> bool:
        """Whether a hard limit refuses the usage asked about."""
        return self.exceeded and self.kind == UsageLimit.Kind.HARD


def check_limit(metric: Metric | str, customer: Any, value: int = 1) -> LimitStatus:
    """Where ``customer`` stands against ``metric``'s limit, and whether recording ``value``
    more would exceed it. Reads only: a few indexed queries whatever the ledger's size."""
    found = get_metric(metric, kind=Metric.Kind.METERED)
    customer_id = resolve_customer(customer).id
    period = billing_period(found, customer_id, timezone.now())
    return status_in(found, customer_id, period, value)


def status_in(metric: Metric, customer_id: str, period: Period, value: int) -> LimitStatus:
    used = period_tally(metric, customer_id, period).by_formula(metric.aggregation)
    return status_of(
        metric, customer_id, period, used, value, applicable_limit(metric, customer_id)
    )


def status_of(
    metric: Metric,
    customer_id: str,
    period: Period,
    used: int,
    value: int,
    limit: UsageLimit | None,
) -> LimitStatus:
    """The status for a known usage figure (no query)."""
    cap = None if limit is None else limit.limit
    return LimitStatus(
        metric=metric.key,
        customer_id=customer_id,
        used=used,
        limit=cap,
        remaining=None if cap is None else max(cap - used, 0),
        exceeded=cap is not None and usage_after(metric, used, value) > cap,
        kind=None if limit is None else limit.kind,
        period_start=period.start,
        period_end=period.end,
        thresholds=() if limit is None else tuple(sorted(limit.thresholds)),
    )


def usage_after(metric: Metric, used: int, value: int) -> int:
    """The usage once ``value`` is recorded, by the metric's formula."""
    if metric.aggregation == Metric.Aggregation.COUNT:
        return used + 1
    if metric.aggregation == Metric.Aggregation.LAST:
        return value
    return used + value


def applicable_limit(metric: Metric, customer_id: str) -> UsageLimit | None:
    """The most specific limit: the customer's own, else one of a price the customer is
    subscribed to (the highest, if several), else the one for everyone."""
    limits = list(
        UsageLimit.objects.filter(
            Q(customer_id=customer_id) | Q(customer_id=""), metric=metric
        ).order_by()  # no join for the admin's ordering by metric
    )
    own = [x for x in limits if x.customer_id == customer_id]
    if own:
        return own[0]
    by_price = {x.stripe_price_id: x for x in limits if x.stripe_price_id}
    subscribed = [by_price[price] for price in _subscribed_prices(customer_id, set(by_price))]
    if subscribed:
        return max(subscribed, key=lambda x: x.limit)
    return next((x for x in limits if x.scope == "everyone"), None)


def _subscribed_prices(customer_id: str, prices: set[str]) -> set[str]:
    """Which of ``prices`` the customer has a live dj-stripe subscription item of."""
    if not prices:
        return set()
    from djstripe.models import SubscriptionItem

    items = SubscriptionItem.objects.filter(
        price__id__in=prices,
        subscription__customer__id=customer_id,
        subscription__stripe_data__status__in=SUBSCRIBED_STATUSES,
    )
    return set(items.values_list("price__id", flat=True))
