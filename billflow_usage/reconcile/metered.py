"""Metered usage: the ledger's delivered total against Stripe's meter event summaries.

For each customer and metered metric the period is the item's current billing period (or
``--since``/``--until``), minute-aligned as Stripe requires, minus the most recent
``SETTLING_WINDOW`` seconds (Stripe's summaries are eventually consistent). The ledger side
counts rows Stripe accepted (``sent``), by the metric's formula (sum, count, last), at the time
Stripe got them (a delivery group's time for aggregated rows). Rows written by this module to
repair drift (identifiers starting with :data:`CORRECTION_PREFIX`) are left out of the ledger
side: they only exist to make Stripe's total equal the recorded usage.

Repairs (``apply``):

- Stripe has less: a correcting ledger row (positive; for ``last`` the ledger's last value)
  stamped in the period, with an identifier derived from customer, metric, period and the
  two totals, so running again before Stripe has caught up never doubles it; then delivered.
- Stripe has more: cancel events the ledger knows of that Stripe may count and the ledger
  doesn't (this module's earlier corrections, failed rows) while Stripe's 24 h cancellation
  window is open; what remains is offset by a negative correction on ``sum`` meters in the
  current, not yet invoiced period, else reported as needing a credit note.
- While an earlier correction is not settled yet (pending, or sent within the settling
  window), nothing new is done for that customer and metric.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Q, QuerySet

from billflow_usage.backends.base import BaseBackend, Outcome, ReadNotSupported, UsageQuery
from billflow_usage.exceptions import InvalidUsage
from billflow_usage.identifiers import CORRECTION_PREFIX, LibraryIdentifier, derived_identifier
from billflow_usage.models import Metric, SubscriptionItemLink, SyncReport, UsageEvent
from billflow_usage.reconcile.cancellation import cancel_in_stripe, cancellable_since
from billflow_usage.reconcile.report import ErrorEntry, MeteredEntry, Report
from billflow_usage.redaction import redact
from billflow_usage.validation import STRIPE_HISTORY

logger = logging.getLogger("billflow_usage")

#: Count meters: at most this many correcting events in one go.
MAX_COUNT_CORRECTION = 1000
#: Parallel summaries requests (reads; the backend's rate limiter still applies).
CONCURRENCY = 4
CHUNK = 500
LEGACY_SKIPPED = (
    "METER_API is 'legacy': this usage goes to usage records on the subscription item, which "
    "no meter counts and billflow_sync cannot read back, so it is not compared (nor repaired); "
    "check it on the customer's upcoming invoice"
)


@dataclass
class Pair:
    """One customer and metric to compare, over ``[start, end)``."""

    customer_id: str
    metric: Metric
    meter_id: str
    start: datetime
    end: datetime
    #: The billing period is still open (not invoiced): negative offsets are allowed.
    open_period: bool = False
    ledger: int = 0
    stripe: int | None = None
    entry: MeteredEntry | None = None
    awaiting: bool = False
    #: Rows a worker may have sent without marking them yet (attempted, or claimed): until
    #: they are marked nobody knows whether Stripe counts them, so the pair isn't compared.
    in_flight: int = 0
    #: Correcting rows this run recorded for the pair.
    correction_ids: list[int] = field(default_factory=list)


def minute_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def plan_pairs(
    metrics: list[Metric],
    meter_ids: Mapping[int, str],
    periods: Mapping[tuple[str, int], tuple[datetime | None, datetime | None]],
    usage_customers: Mapping[int, set[str]],
    report: Report,
    *,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    settling: float,
    legacy: bool = False,
) -> list[Pair]:
    """The pairs to compare: every (customer, metric) with a live item, plus with ``since``
    every customer with usage of the metric. Pairs that can't be compared are reported as
    ``skipped``: all of them with ``legacy`` usage records, which no meter summary counts."""
    horizon = minute_floor(now - timedelta(seconds=settling))
    pairs: list[Pair] = []
    for metric in metrics:
        if not metric.is_metered:
            continue
        customers = {c for c, m in periods if m == metric.pk}
        if since is not None:
            customers |= usage_customers.get(metric.pk, set())
        meter_id = meter_ids.get(metric.pk, "")
        for customer in sorted(customers):
            period_start, period_end = periods.get((customer, metric.pk), (None, None))
            start = since or period_start
            end = min(until or period_end or now, now)
            if legacy:
                report.metered.append(_skipped(customer, metric, start, end, LEGACY_SKIPPED))
                continue
            if not meter_id:
                report.metered.append(
                    _skipped(
                        customer,
                        metric,
                        start,
                        end,
                        "the metric has no Stripe meter "
                        "(set stripe_meter_id or run with --create-meters)",
                    )
                )
                continue
            if start is None:
                report.metered.append(
                    _skipped(
                        customer,
                        metric,
                        None,
                        None,
                        "no billing period is known for this customer's item; pass --since",
                    )
                )
                continue
            start, end = minute_floor(start), min(minute_floor(end), horizon)
            if end <= start:
                report.metered.append(
                    _skipped(
                        customer,
                        metric,
                        start,
                        end,
                        "the whole period is within the settling window; nothing to compare yet",
                    )
                )
                continue
            open_period = (
                period_start is not None
                and period_end is not None
                and start >= minute_floor(period_start)
                and period_end > now
            )
            pairs.append(Pair(customer, metric, meter_id, start, end, open_period))
    return pairs


def compare(
    pairs: list[Pair],
    backend: BaseBackend,
    report: Report,
    *,
    now: datetime,
    settling: float,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Fill in both totals and the entry of every pair (drifting pairs are reported)."""
    _ledger_totals(pairs, now=now, settling=settling)
    in_flight = [pair for pair in pairs if pair.in_flight]
    for pair in in_flight:
        pair.entry = _skipped(
            pair.customer_id,
            pair.metric,
            pair.start,
            pair.end,
            f"{pair.in_flight} event(s) of the period are being delivered (sent, Stripe's "
            "answer not recorded yet): compared next run, once they are marked",
        )
    pairs = [pair for pair in pairs if not pair.in_flight]

    def ask(pair: Pair) -> None:
        query = UsageQuery(
            pair.meter_id,
            pair.metric.meter_event_name,
            pair.metric.aggregation,
            pair.customer_id,
            pair.start,
            pair.end,
        )
        try:
            pair.stripe = backend.usage_total(query).value
        except ReadNotSupported as exc:
            pair.entry = _entry(pair, "error", detail=str(exc))
        except Exception as exc:
            pair.entry = _entry(pair, "error", detail=f"{type(exc).__name__}: {redact(str(exc))}")

    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="billflow-sync") as pool:
        for done, _ in enumerate(pool.map(ask, pairs), start=len(in_flight) + 1):
            if progress is not None:
                progress(done)
    report.metered.extend(pair.entry for pair in in_flight if pair.entry is not None)
    for pair in pairs:
        report.count("metered_checked")
        if pair.entry is not None:  # an error
            report.errors.append(
                ErrorEntry(
                    "metered", pair.customer_id, pair.metric.key, "stripe_error", pair.entry.detail
                )
            )
            report.metered.append(pair.entry)
            continue
        difference = (pair.stripe or 0) - pair.ledger
        if difference == 0:
            report.count("metered_in_sync")
            continue
        if pair.metric.aggregation == Metric.Aggregation.LAST:
            status = "mismatch"
        elif difference < 0:
            status = "missing_in_stripe"
        else:
            status = "surplus_in_stripe"
        pair.entry = _entry(pair, status)
        _plan(pair, now=now)
        report.metered.append(pair.entry)


def repair(
    pairs: list[Pair],
    backend: BaseBackend,
    *,
    sync_report: SyncReport | None,
    now: datetime,
) -> list[int]:
    """Carry out the planned repairs; returns the IDs of correcting rows to deliver."""
    from billflow_usage.ledger import record_usage

    to_deliver: list[int] = []
    for pair in pairs:
        entry = pair.entry
        if entry is None or not entry.is_drift or pair.awaiting:
            continue
        remaining = abs(entry.difference or 0)
        if entry.action == "cancel":
            remaining -= _cancel_known(pair, backend, remaining, now=now)
            if remaining == 0:
                entry.applied = True
                entry.detail = "surplus events cancelled in Stripe"
                continue
            if not (pair.open_period and pair.metric.aggregation == Metric.Aggregation.SUM):
                entry.action = "needs_credit_note"
                entry.detail = (
                    f"cancelled what could be; Stripe still bills {remaining} more than the "
                    "ledger: issue a credit note"
                )
                continue
            entry.action = "offset"
        if entry.action in ("correct", "offset"):
            values = _correction_values(pair, remaining)
            ids = []
            try:
                for index, value in enumerate(values):
                    row = record_usage(
                        pair.metric,
                        pair.customer_id,
                        value,
                        timestamp=pair.end - timedelta(seconds=1),
                        identifier=_identifier(pair, entry.action, index),
                        source=sync_report,
                    )
                    ids.append(row.pk)
            except InvalidUsage as exc:
                # E.g. an earlier correction of the same drift failed for good: it is in the
                # failed events list, to retry from the admin.
                entry.detail = f"could not record the correction: {exc}"
                to_deliver.extend(ids)
                pair.correction_ids = ids
                continue
            to_deliver.extend(ids)
            entry.detail = f"recorded {len(ids)} correcting event(s) of {values[0]:+d}" + (
                "" if len(values) == 1 else " each"
            )
            entry.applied = True  # confirmed (or withdrawn) by confirm_delivery()
            pair.correction_ids = ids
            logger.info(
                "billflow_sync: %s %s for %s: %s",
                entry.action,
                pair.metric.key,
                pair.customer_id,
                entry.detail,
            )
    return to_deliver


def confirm_delivery(pairs: list[Pair]) -> None:
    """An entry is repaired only if Stripe accepted its correcting rows."""
    ids = [i for pair in pairs for i in pair.correction_ids]
    if not ids:
        return
    found = UsageEvent.objects.filter(pk__in=ids).values_list("pk", "status", "last_error_code")
    status = {pk: state for pk, state, _ in found}
    errors = {pk: code for pk, _, code in found}
    for pair in pairs:
        rows = pair.correction_ids
        if not rows or pair.entry is None:
            continue
        unsent = [i for i in rows if status.get(i) != UsageEvent.Status.SENT]
        if unsent:
            pair.entry.applied = False
            code = errors.get(unsent[0]) or "pending"
            pair.entry.detail += f"; not delivered yet ({code}): the worker keeps trying"


def _plan(pair: Pair, *, now: datetime) -> None:
    entry = pair.entry
    assert entry is not None
    if pair.awaiting:
        entry.action = "awaiting_correction"
        entry.detail = "an earlier correction is not settled in Stripe yet; checked next run"
        return
    stamp = pair.end - timedelta(seconds=1)
    if stamp < now - STRIPE_HISTORY + timedelta(hours=1):
        entry.action = (
            "needs_credit_note" if entry.status == "surplus_in_stripe" else ("needs_invoice_item")
        )
        entry.detail = "the period is older than Stripe's 35-day meter event window"
        return
    if entry.status in ("missing_in_stripe", "mismatch"):
        entry.action = "correct"
        if (
            pair.metric.aggregation == Metric.Aggregation.COUNT
            and abs(entry.difference or 0) > MAX_COUNT_CORRECTION
        ):
            entry.action = "needs_invoice_item"
            entry.detail = f"more than {MAX_COUNT_CORRECTION} events missing"
        return
    # Stripe has more: cancel what the ledger knows of, else offset or credit note.
    if _cancellable(pair, now=now).exists():
        entry.action = "cancel"
    elif pair.open_period and pair.metric.aggregation == Metric.Aggregation.SUM:
        entry.action = "offset"
    else:
        entry.action = "needs_credit_note"
        entry.detail = (
            "Stripe bills more than the ledger recorded and no known event can be cancelled "
            "(24 h window) or offset (count/last meter, or an invoiced period): issue a "
            "credit note"
        )


def _correction_values(pair: Pair, remaining: int) -> list[int]:
    entry = pair.entry
    assert entry is not None
    formula = pair.metric.aggregation
    if formula == Metric.Aggregation.LAST:
        return [pair.ledger]
    if formula == Metric.Aggregation.COUNT:
        return [1] * remaining
    return [-remaining if entry.action == "offset" else remaining]


def _identifier(pair: Pair, action: str, index: int) -> str:
    """Deterministic: the same drift of the same period gets the same rows on a re-run; the
    installation's namespace keeps the same drift of another database apart."""
    parts = (pair.customer_id, pair.metric.key, pair.start.isoformat(), pair.ledger, pair.stripe)
    digest = derived_identifier(CORRECTION_PREFIX, (*parts, action), digits=40)
    return LibraryIdentifier(f"{digest}-{index}") if index else digest


def _cancellable(pair: Pair, *, now: datetime) -> QuerySet[UsageEvent]:
    """Rows Stripe may count and the ledger doesn't, still inside the 24 h window."""
    recent = cancellable_since(now)
    return (
        UsageEvent.objects.filter(metric=pair.metric, customer_id=pair.customer_id)
        .billed_between(pair.start, pair.end)
        .filter(group__isnull=True, value__gt=0)
        .filter(
            Q(
                identifier__startswith=CORRECTION_PREFIX,
                status=UsageEvent.Status.SENT,
                sent_at__gte=recent,
            )
            | Q(status=UsageEvent.Status.FAILED, attempts__gt=0, created_at__gte=recent)
        )
        .order_by("-value", "pk")
    )


def _cancel_known(pair: Pair, backend: BaseBackend, surplus: int, *, now: datetime) -> int:
    """Cancel known events worth at most ``surplus``; returns how much was cancelled."""
    cancelled = 0
    count_meter = pair.metric.aggregation == Metric.Aggregation.COUNT
    for row in _cancellable(pair, now=now)[:50]:
        worth = 1 if count_meter else row.value
        if worth > surplus - cancelled:
            continue
        result = cancel_in_stripe(
            pair.metric,
            row.identifier,
            [row],
            backend,
            code="cancelled_by_sync",
            message="Cancelled in Stripe by billflow_sync: Stripe billed more than the ledger "
            "recorded.",
        )
        if result.outcome != Outcome.DELIVERED:
            continue
        cancelled += worth
        if cancelled >= surplus:
            break
    return cancelled


def _ledger_totals(pairs: list[Pair], *, now: datetime, settling: float) -> None:
    groups: dict[tuple[int, datetime, datetime], list[Pair]] = defaultdict(list)
    for pair in pairs:
        groups[(pair.metric.pk, pair.start, pair.end)].append(pair)
    unsettled = now - timedelta(seconds=settling)
    for (metric_pk, start, end), members in groups.items():
        by_customer = {p.customer_id: p for p in members}
        customers = sorted(by_customer)
        for offset in range(0, len(customers), CHUNK):
            chunk = customers[offset : offset + CHUNK]
            rows = UsageEvent.objects.filter(
                metric_id=metric_pk, customer_id__in=chunk
            ).billed_between(start, end)
            usage = rows.filter(status=UsageEvent.Status.SENT).usage()
            for (_, customer), total in usage.totals_by_formula("customer_id").items():
                by_customer[customer].ledger = total
            awaiting = rows.filter(identifier__startswith=CORRECTION_PREFIX).filter(
                Q(status=UsageEvent.Status.PENDING)
                | Q(status=UsageEvent.Status.SENT, sent_at__gt=unsettled)
            )
            for customer in awaiting.values_list("customer_id", flat=True).distinct():
                by_customer[customer].awaiting = True
            unmarked = rows.filter(
                Q(attempts__gt=0) | Q(claimed_until__isnull=False),
                status=UsageEvent.Status.PENDING,
            ).exclude(identifier__startswith=CORRECTION_PREFIX)  # those are ``awaiting``
            for customer, count in (
                unmarked.order_by()
                .values("customer_id")
                .annotate(count=Count("pk"))
                .values_list("customer_id", "count")
            ):
                by_customer[customer].in_flight = count


def _entry(pair: Pair, status: str, *, detail: str = "") -> MeteredEntry:
    difference = None if pair.stripe is None else pair.stripe - pair.ledger
    return MeteredEntry(
        customer_id=pair.customer_id,
        metric=pair.metric.key,
        formula=pair.metric.aggregation,
        period_start=pair.start,
        period_end=pair.end,
        ledger=pair.ledger,
        stripe=pair.stripe,
        difference=difference,
        status=status,
        detail=detail,
    )


def _skipped(
    customer: str, metric: Metric, start: datetime | None, end: datetime | None, why: str
) -> MeteredEntry:
    return MeteredEntry(
        customer_id=customer,
        metric=metric.key,
        formula=metric.aggregation,
        period_start=start,
        period_end=end,
        ledger=None,
        stripe=None,
        difference=None,
        status="skipped",
        detail=why,
    )


def link_periods(
    links: QuerySet[SubscriptionItemLink],
) -> dict[tuple[str, int], tuple[datetime | None, datetime | None]]:
    return {
        (customer, metric): (start, end)
        for customer, metric, start, end in links.values_list(
            "customer_id", "metric_id", "current_period_start", "current_period_end"
        )
    }
