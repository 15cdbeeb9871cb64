"""``run_sync``: one reconciliation run, step by step, stored as a ``SyncReport``.

1. meters (found by event name; created with ``create_meters``; none in legacy mode),
2. subscription item links refreshed and seats counted by their trackers (with ``apply``,
owned quantities recounted), 3. pending usage and seat quantities delivered, 4. metered usage
compared (and repaired), 5. seats compared with what Stripe has after step 3 (and repaired),
6. unbilled usage and failed events listed.

Modes: ``dry_run`` reads only (no link, ledger or Stripe write; the report row is still
kept); the default ``check`` also refreshes links, stores found meter IDs and delivers what
is pending; ``apply`` also repairs drift.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from billflow_usage.backends import get_backend
from billflow_usage.backends.base import BaseBackend
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery import DeliveryStats, deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, SyncReport, UsageEvent
from billflow_usage.reconcile import items as items_step
from billflow_usage.reconcile import metered, seats, unbilled
from billflow_usage.reconcile.meters import resolve_meters
from billflow_usage.reconcile.report import ProgressCallback, Report, clip, for_storage
from billflow_usage.redaction import redact
from billflow_usage.validation import STRIPE_HISTORY

logger = logging.getLogger("billflow_usage")

CHUNK = 500


@dataclass
class SyncOptions:
    """What ``manage.py billflow_sync`` was asked to do."""

    apply: bool = False
    dry_run: bool = False
    metrics: list[str] = field(default_factory=list)
    customers: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    create_meters: bool = False
    #: ``auto`` (dj-stripe's rows when fresh, else Stripe), ``stripe`` or ``djstripe``.
    items_from: str = "auto"
    #: Defaults to ``BILLFLOW_USAGE["SETTLING_WINDOW"]``.
    settling_window: float | None = None
    #: Requests per second; defaults to ``BILLFLOW_USAGE["SYNC_RATE_LIMIT"]``.
    rate_limit: float | None = None
    #: Deliver pending usage before comparing (``billflow_setup`` only looks).
    deliver: bool = True
    #: Store the run as a ``SyncReport`` (``billflow_setup --check`` writes nothing).
    keep: bool = True

    @property
    def mode(self) -> str:
        if self.dry_run:
            return SyncReport.Mode.DRY_RUN
        return SyncReport.Mode.APPLY if self.apply else SyncReport.Mode.CHECK

    def as_dict(self, settling: float) -> dict[str, object]:
        return {
            "metrics": list(self.metrics),
            "customers": list(self.customers),
            "since": self.since,
            "until": self.until,
            "settling_window": settling,
            "create_meters": self.create_meters,
            "items_from": self.items_from,
        }


def run_sync(
    options: SyncOptions,
    *,
    backend: BaseBackend | None = None,
    progress: ProgressCallback | None = None,
) -> Report:
    """Run one reconciliation; the report is returned and stored as a ``SyncReport``."""
    now = timezone.now()
    settling = float(
        billflow_settings.SETTLING_WINDOW
        if options.settling_window is None
        else options.settling_window
    )
    report = Report(mode=options.mode, started_at=now, options=options.as_dict(settling))
    row = SyncReport(started_at=now, mode=options.mode, options=report.as_json()["options"])
    if options.keep:
        row.save()
        report.report_id = row.pk
    own = backend is None
    rate = billflow_settings.SYNC_RATE_LIMIT if options.rate_limit is None else options.rate_limit
    sink = backend or get_backend(rate_limit=float(rate) or None)
    try:
        _run(options, report, row, sink, now=now, settling=settling, progress=progress)
    except Exception as exc:
        row.status = SyncReport.Status.FAILED
        row.error_message = clip(redact(f"{type(exc).__name__}: {exc}"))
        _finish(row, report, sink)
        raise
    finally:
        if own:
            sink.close()
    row.status = SyncReport.Status.COMPLETED
    _finish(row, report, sink)
    return report


def _run(
    options: SyncOptions,
    report: Report,
    row: SyncReport,
    backend: BaseBackend,
    *,
    now: datetime,
    settling: float,
    progress: ProgressCallback | None,
) -> None:
    write = not options.dry_run
    metrics = _metrics(options.metrics)
    report.count("metrics", len(metrics))
    horizon = options.since or now - STRIPE_HISTORY
    step = _stepper(progress)

    step("meters", 0, 1)
    # Legacy usage records go to subscription items and no meter counts them: a meter that
    # shares a legacy metric's event name bills nothing of it, so none is looked up.
    legacy = billflow_settings.METER_API == "legacy"
    meter_ids = (
        {}
        if legacy
        else resolve_meters(metrics, backend, report, create=options.create_meters, write=write)
    )

    step("items", 0, 1)
    usage = _usage_customers(metrics, options.customers, horizon)
    base = set(options.customers) or _link_customers(metrics) | {
        c for customers in usage.values() for c in customers
    }
    unpushed = seats.unpushed_versions(metrics, options.customers)
    subscriptions, listed = items_step.read_subscriptions(
        base,
        backend,
        report,
        explicit=bool(options.customers),
        items_from=options.items_from,
        now=now,
    )
    live = items_step.LiveItems(
        listed=listed, items=items_step.match_items(subscriptions, metrics, meter_ids)
    )
    items_step.refresh_links(live, metrics, report, write=write)
    customers = base | listed
    report.count("customers", len(customers))
    seat_counts = seats.count_seats(
        metrics,
        customers,
        {key: item for key, (_, item) in live.items.items()},
        listed,
        unpushed,
        report,
    )
    if options.apply and write:
        seats.recount(seat_counts, report)

    if write and options.deliver:
        step("deliver", 0, 1)
        report.delivery = _deliver(metrics, options.customers, backend).as_dict()

    # Billing periods and items: Stripe's (or dj-stripe's) answer where read, else stored.
    periods = _stored_periods(metrics, customers - listed)
    for (customer, metric_pk), (_, item) in live.items.items():
        periods[(customer, metric_pk)] = (item.current_period_start, item.current_period_end)
    pairs = metered.plan_pairs(
        metrics,
        meter_ids,
        periods,
        usage,
        report,
        since=options.since,
        until=options.until,
        now=now,
        settling=settling,
        legacy=legacy,
    )
    total = len(pairs)
    step("metered", 0, total)
    checks = metered.compare(
        pairs,
        backend,
        report,
        now=now,
        settling=settling,
        progress=lambda done: step("metered", done, total),
    )
    if options.apply and write:
        corrections = metered.repair(checks, backend, sync_report=row, now=now)
        ids = [i for correction in corrections for i in correction.event_ids]
        if ids:
            deliver_pending(backend=backend, event_ids=ids, link_ids=[])
            metered.confirm_delivery(corrections)

    step("seats", 0, 1)
    drifting = seats.compare_seats(seat_counts, report)
    if options.apply and write and drifting:
        link_ids = seats.apply_seats(drifting)
        if link_ids:
            deliver_pending(backend=backend, event_ids=[], link_ids=link_ids)
        seats.confirm_seats(drifting)

    step("unbilled", 0, 1)
    billed = set(live.items) | items_step.stored_items(customers - listed, metrics)
    unbilled.find_unbilled(metrics, usage, billed, report, since=horizon)
    unbilled.list_failed(metrics, options.customers, horizon, report, billed=billed, now=now)
    step("done", 1, 1)


def _metrics(keys: list[str]) -> list[Metric]:
    rows = Metric.objects.filter(active=True).order_by("key")
    if keys:
        rows = rows.filter(key__in=keys)
        unknown = sorted(set(keys) - set(rows.values_list("key", flat=True)))
        if unknown:
            from billflow_usage.exceptions import UnknownMetric

            raise UnknownMetric(
                f"No active metric with key {', '.join(map(repr, unknown))}; known: "
                + ", ".join(Metric.objects.filter(active=True).values_list("key", flat=True))
            )
    return list(rows)


def _usage_customers(
    metrics: list[Metric], customers: list[str], since: datetime
) -> dict[int, set[str]]:
    """Metric pk -> customers with ledger rows (not cancelled) since ``since``."""
    rows = UsageEvent.objects.filter(metric__in=metrics, occurred_at__gte=since).exclude(
        status=UsageEvent.Status.CANCELLED
    )
    if customers:
        rows = rows.filter(customer_id__in=customers)
    found: dict[int, set[str]] = defaultdict(set)
    for metric_pk, customer in rows.order_by().values_list("metric_id", "customer_id").distinct():
        found[metric_pk].add(customer)
    return found


def _link_customers(metrics: list[Metric]) -> set[str]:
    return set(
        SubscriptionItemLink.objects.filter(active=True, metric__in=metrics)
        .order_by()
        .values_list("customer_id", flat=True)
        .distinct()
    )


def _stored_periods(
    metrics: list[Metric], customers: set[str]
) -> dict[tuple[str, int], tuple[datetime | None, datetime | None]]:
    """Billing periods of the stored links with an item, for customers not read from Stripe."""
    found: dict[tuple[str, int], tuple[datetime | None, datetime | None]] = {}
    ordered = sorted(customers)
    for offset in range(0, len(ordered), CHUNK):
        links = SubscriptionItemLink.objects.filter(
            active=True, metric__in=metrics, customer_id__in=ordered[offset : offset + CHUNK]
        ).exclude(stripe_subscription_item_id="")
        found.update(metered.link_periods(links))
    return found


def _deliver(metrics: list[Metric], customers: list[str], backend: BaseBackend) -> DeliveryStats:
    """Deliver what is due for the selection (everything, without filters)."""
    if not customers and len(metrics) == Metric.objects.filter(active=True).count():
        return deliver_pending(backend=backend)
    selection = Q(metric__in=metrics)
    if customers:
        selection &= Q(customer_id__in=customers)
    event_ids = list(
        UsageEvent.objects.filter(selection, status=UsageEvent.Status.PENDING).values_list(
            "pk", flat=True
        )
    )
    link_ids = list(
        SubscriptionItemLink.objects.filter(selection, active=True).values_list("pk", flat=True)
    )
    return deliver_pending(backend=backend, event_ids=event_ids, link_ids=link_ids)


def _finish(row: SyncReport, report: Report, backend: BaseBackend) -> None:
    report.finished_at = timezone.now()
    limiter = getattr(backend, "limiter", None)
    report.counts["stripe_requests"] = int(getattr(limiter, "calls", 0))
    # Capped: the admin renders this row, and nothing bounds how much one run finds.
    document, changes = for_storage(report.as_json(), report.changes())
    row.finished_at = report.finished_at
    row.summary = document["summary"]
    row.report = document
    row.changes = changes
    row.drift_remaining = report.drift_remaining
    if row.pk is not None:
        row.save()


def _stepper(progress: ProgressCallback | None) -> ProgressCallback:
    def step(name: str, done: int, total: int) -> None:
        if progress is not None:
            progress(name, done, total)

    return step
