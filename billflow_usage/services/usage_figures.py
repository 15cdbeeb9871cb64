"""What the per-customer usage page shows: per metric, the ledger's figure for the current
billing period, Stripe's, and the drift between them, plus daily usage for the chart.

The ledger is counted as ``billflow_sync`` counts it (rows filed at their delivery group's
time, by the metric's formula, corrections left out) over sent *and* pending rows: what the
customer will be billed once delivery catches up. Stripe's figure comes from the configured
backend's ``usage_total`` read (meter event summaries); for seats it is the quantity Stripe
last confirmed. Daily totals are aggregated in the database, a handful of queries whatever
the number of rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db.models import Count
from django.utils import timezone

from billflow_usage.backends.base import BaseBackend, UsageQuery
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.models.usage_totals import Window, detail_rows, usage_totals
from billflow_usage.periods import Period, calendar_month, stored_period
from billflow_usage.services.backend_access import BackendFailure, describe_failure, request_backend

logger = logging.getLogger("billflow_usage.admin")

BILLED_STATUSES = (UsageEvent.Status.SENT, UsageEvent.Status.PENDING)


@dataclass
class MetricFigures:
    """One row of the totals table.

    Metered: ``ledger`` is the period's usage (sent + pending), ``stripe`` the meter's total.
    Licensed: ``ledger`` is the desired seat count, ``stripe`` what Stripe last confirmed.
    """

    metric: Metric
    period: Period
    link: SubscriptionItemLink | None
    ledger: int | None = None
    pending_events: int = 0
    stripe: int | None = None
    #: Why Stripe's figure is missing, or what qualifies it.
    stripe_note: str = ""

    @property
    def drift(self) -> int | None:
        """Stripe minus the ledger; None when either side is unknown."""
        if self.ledger is None or self.stripe is None:
            return None
        return self.stripe - self.ledger

    @property
    def drift_text(self) -> str:
        drift = self.drift
        if drift is None:
            return "-"
        if drift == 0:
            return "0 (in sync)"
        side = "more" if drift > 0 else "less"
        return f"{drift:+d} (Stripe has {abs(drift)} {side})"


@dataclass
class DailySeries:
    """A metered metric's usage per UTC day of its period so far, by its formula (days
    without usage absent from ``values``)."""

    metric: Metric
    days: list[date]
    values: dict[date, int] = field(default_factory=dict)


@dataclass
class CustomerUsage:
    customer_id: str
    figures: list[MetricFigures]
    daily: list[DailySeries]
    #: Every UTC day of the charted metrics' periods (the chart's x axis).
    days: list[date]
    #: Set when Stripe couldn't be read at all (unreachable, a backend without reads).
    stripe_message: str = ""

    @property
    def calendar_month_used(self) -> bool:
        return any(not figures.period.from_subscription for figures in self.figures)


def customer_usage(customer_id: str, *, now: datetime | None = None) -> CustomerUsage:
    """The figures for one (valid) customer ID; Stripe is read only for metered metrics."""
    now = now or timezone.now()
    metrics = list(Metric.objects.filter(active=True).order_by("key"))
    links = {
        link.metric_id: link
        for link in SubscriptionItemLink.objects.filter(customer_id=customer_id, active=True)
    }
    month = calendar_month(now)
    figures = {
        metric.pk: MetricFigures(metric, _period(links.get(metric.pk), month), links.get(metric.pk))
        for metric in metrics
    }
    metered = {pk: f for pk, f in figures.items() if f.metric.is_metered}
    daily = {series.metric.pk: series for series in _count_ledger(customer_id, metered, now)}
    # Metrics the customer is subscribed to, or has usage of.
    shown = [
        f for pk, f in figures.items() if f.link is not None or (pk in daily and daily[pk].values)
    ]
    for seats in (f for f in shown if not f.metric.is_metered):
        _seat_figures(seats)
    charted = [f for f in shown if f.metric.is_metered]
    return CustomerUsage(
        customer_id,
        shown,
        [daily[f.metric.pk] for f in charted],
        days=sorted({day for f in charted for day in f.period.days()}),
        stripe_message=_read_stripe(customer_id, charted),
    )


def _period(link: SubscriptionItemLink | None, month: Period) -> Period:
    stored = (
        None if link is None else stored_period(link.current_period_start, link.current_period_end)
    )
    return stored or month


def _count_ledger(
    customer_id: str, metered: dict[int, MetricFigures], now: datetime
) -> list[DailySeries]:
    """Fill each metered figure's ledger total and pending count; return the daily series.

    Each day's usage by the metric's formula (one query, and one more for ``last`` meters),
    the period's from its days', and the pending rows counted per metric (one query).
    """
    if not metered:
        return []
    windows = [Window(pk, f.period.start, f.period.end) for pk, f in metered.items()]
    series = {pk: DailySeries(f.metric, f.period.days(until=now)) for pk, f in metered.items()}
    daily = usage_totals(windows, customers=[customer_id], statuses=BILLED_STATUSES, by="day")
    for (metric_pk, day), total in daily.items():
        series[metric_pk].values[day] = total
    pending = detail_rows(
        windows, customers=[customer_id], statuses=[UsageEvent.Status.PENDING], by="customer_id"
    ).values_list("metric_id")
    for metric_pk, events in pending.annotate(events=Count("pk")).order_by():
        metered[metric_pk].pending_events = events
    for metric_pk, figures in metered.items():
        values = series[metric_pk].values
        figures.ledger = figures.metric.total_of([values[day] for day in sorted(values)])
    return list(series.values())


def _seat_figures(figures: MetricFigures) -> None:
    link = figures.link
    assert link is not None
    figures.ledger = link.quantity
    figures.stripe = link.synced_quantity
    if not link.stripe_subscription_item_id:
        figures.stripe_note = "No Stripe subscription item yet; billflow_sync links it."
    elif not link.quantity_in_sync:
        figures.stripe_note = "Waiting for Stripe to confirm the desired quantity."


def _read_stripe(customer_id: str, metered: list[MetricFigures]) -> str:
    """Ask the backend for each metered figure; returns a page-wide message when Stripe is
    out of reach (the rest of the page renders from the ledger either way)."""
    if not metered:
        return ""
    try:
        with request_backend() as backend:
            for position, figures in enumerate(metered):
                failure = _ask(backend, customer_id, figures)
                if failure is not None and failure.unreachable:
                    _not_asked(metered[position:])
                    return f"Stripe's figures are unavailable: {failure.message}"
    except Exception as exc:  # building the backend failed
        _not_asked(metered)
        return f"Stripe's figures are unavailable: {describe_failure(exc).message}"
    return ""


def _ask(backend: BaseBackend, customer_id: str, figures: MetricFigures) -> BackendFailure | None:
    metric = figures.metric
    if not metric.stripe_meter_id:
        figures.stripe_note = (
            "No Stripe meter ID is stored for this metric; billflow_sync finds it by event "
            "name (or creates it with --create-meters)."
        )
        return None
    query = UsageQuery(
        metric.stripe_meter_id,
        metric.meter_event_name,
        metric.aggregation,
        customer_id,
        figures.period.start,
        figures.period.end,
    )
    try:
        figures.stripe = backend.usage_total(query).value
    except Exception as exc:
        failure = describe_failure(exc)
        logger.warning("Usage page: reading %s of %s: %s", metric.key, customer_id, failure.message)
        figures.stripe_note = failure.message
        return failure
    return None


def _not_asked(metered: Iterable[MetricFigures]) -> None:
    for figures in metered:
        if figures.stripe is None and not figures.stripe_note:
            figures.stripe_note = "Not available: see the message above."
