"""Metered usage: the ledger's delivered total against Stripe's meter event summaries.

For each customer and metered metric the period is the item's current billing period (or
``--since``/``--until``), minute-aligned as Stripe requires, minus the most recent
``SETTLING_WINDOW`` seconds (Stripe's summaries are eventually consistent). The ledger side
counts rows Stripe accepted (``sent``), by the metric's formula (sum, count, last), at the time
Stripe got them (a delivery group's time for aggregated rows). Rows written by this module to
repair drift (identifiers starting with :data:`CORRECTION_PREFIX`) are left out of the ledger
side: they only exist to make Stripe's total equal the recorded usage. Stripe also counts meter
events asynchronously, so a pair with rows sent within the settling window, or since the run
began (its own delivery step's, whatever the window), is not compared: the next run does.

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

Each pair is observed (both totals and what surrounds them: rows in flight, an unsettled
correction, cancellable events, the period's age) and what it needs is decided by the pure
:func:`~billflow_usage.reconcile.metered_decision.decide`; :func:`repair` only carries the
decision out.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.db.models import Count, Max, Q, QuerySet

from billflow_usage.backends.base import BaseBackend, Outcome, ReadNotSupported, UsageQuery
from billflow_usage.exceptions import InvalidUsage
from billflow_usage.identifiers import CORRECTION_PREFIX, LibraryIdentifier, derived_identifier
from billflow_usage.models import Metric, SubscriptionItemLink, SyncReport, UsageEvent
from billflow_usage.models.usage_totals import Window, usage_totals
from billflow_usage.periods import minute_floor
from billflow_usage.reconcile.cancellation import cancel_in_stripe, cancellable_since
from billflow_usage.reconcile.metered_decision import (
    Decision,
    MeteredAction,
    MeteredStatus,
    Observed,
    decide,
)
from billflow_usage.reconcile.report import ErrorEntry, MeteredEntry, Report
from billflow_usage.redaction import redact
from billflow_usage.validation import too_old_for_stripe

logger = logging.getLogger("billflow_usage")

#: Parallel summaries requests (reads; the backend's rate limiter still applies).
CONCURRENCY = 4
CHUNK = 500
#: A correction, stamped in the period, must still be within Stripe's window when a worker
#: sends it: this long after the run at most.
CORRECTION_LEEWAY = timedelta(hours=1)
LEGACY_SKIPPED = (
    "METER_API is 'legacy': this usage goes to usage records on the subscription item, which "
    "no meter counts and billflow_sync cannot read back, so it is not compared (nor repaired); "
    "check it on the customer's upcoming invoice"
)
NO_METER_SKIPPED = (
    "the metric has no Stripe meter (set stripe_meter_id or run with --create-meters)"
)
NO_PERIOD_SKIPPED = "no billing period is known for this customer's item; pass --since"
SETTLING_SKIPPED = "the whole period is within the settling window; nothing to compare yet"


@dataclass(frozen=True)
class Pair:
    """One customer and metric to compare, over ``[start, end)``."""

    customer_id: str
    metric: Metric
    meter_id: str
    start: datetime
    end: datetime
    #: The billing period is still open (not invoiced): negative offsets are allowed.
    open_period: bool = False

    @property
    def correction_at(self) -> datetime:
        """When a correction of the pair happens: the period's last second."""
        return self.end - timedelta(seconds=1)


@dataclass(frozen=True)
class LedgerSide:
    """What the ledger holds of one pair."""

    #: The usage Stripe accepted, by the metric's formula.
    total: int = 0
    #: Rows a worker may have sent without marking them yet (attempted, or claimed): until
    #: they are marked nobody knows whether Stripe counts them.
    in_flight: int = 0
    #: An earlier correction is pending, or sent within the settling window.
    awaiting: bool = False
    #: Rows (not corrections) sent within the settling window, or since the run began.
    just_sent: int = 0
    #: When the most recent of them was sent.
    last_sent: datetime | None = None

    @property
    def unsettled(self) -> bool:
        """Stripe may not count all of it yet: the pair is not compared this run."""
        return bool(self.in_flight or self.just_sent)


@dataclass(frozen=True)
class Check:
    """A pair as compared: what was observed, what it needs, and its entry in the report
    (which :func:`repair` and :func:`confirm_delivery` complete)."""

    pair: Pair
    observed: Observed
    decision: Decision
    entry: MeteredEntry


@dataclass(frozen=True)
class Correction:
    """The correcting rows recorded for one entry, to deliver and confirm."""

    entry: MeteredEntry
    event_ids: tuple[int, ...]


def settled_until(now: datetime, settling: float) -> datetime:
    """Where the comparable usage ends: ``settling`` seconds ago, on the minute before it
    (Stripe's summaries count whole minutes). With no settling window the minute in progress
    counts too, so usage sent seconds ago (of a subscription made seconds ago) is compared."""
    if settling <= 0:
        floor = minute_floor(now)
        return floor if floor == now else floor + timedelta(minutes=1)
    return minute_floor(now - timedelta(seconds=settling))


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
    horizon = settled_until(now, settling)
    pairs: list[Pair] = []
    for metric in metrics:
        if not metric.is_metered:
            continue
        customers = {c for c, m in periods if m == metric.pk}
        if since is not None:
            customers |= usage_customers.get(metric.pk, set())
        meter_id = meter_ids.get(metric.pk, "")
        for customer in sorted(customers):
            planned = _plan_pair(
                customer,
                metric,
                meter_id,
                periods.get((customer, metric.pk), (None, None)),
                since=since,
                until=until,
                now=now,
                horizon=horizon,
                legacy=legacy,
            )
            if isinstance(planned, Pair):
                pairs.append(planned)
            else:
                report.metered.append(planned)
    return pairs


def compare(
    pairs: list[Pair],
    backend: BaseBackend,
    report: Report,
    *,
    now: datetime,
    settling: float,
    progress: Callable[[int], None] | None = None,
) -> list[Check]:
    """Observe both sides of every pair, decide what each needs and report it (pairs in sync
    are only counted); returns the pairs reported. Pairs with events in flight, or sent too
    recently for Stripe to count them yet, aren't read from Stripe."""
    ledger = _ledger_sides(pairs, now=now, settling=settling)
    in_flight = [pair for pair in pairs if ledger[pair].unsettled]
    stripe = _read_stripe(
        [pair for pair in pairs if not ledger[pair].unsettled],
        backend,
        done=len(in_flight),
        progress=progress,
    )
    checks: list[Check] = []
    for pair in [*in_flight, *stripe]:
        total, read_error = stripe.get(pair, (None, ""))
        observed = _observe(pair, ledger[pair], total, read_error, now=now)
        decision = decide(observed)
        if decision.status != MeteredStatus.SKIPPED:
            report.count("metered_checked")
        if decision.status == MeteredStatus.IN_SYNC:
            report.count("metered_in_sync")
            continue
        entry = _entry(pair, observed, decision)
        if decision.status == MeteredStatus.ERROR:
            report.errors.append(
                ErrorEntry(
                    "metered", pair.customer_id, pair.metric.key, "stripe_error", entry.detail
                )
            )
        report.metered.append(entry)
        checks.append(Check(pair, observed, decision, entry))
    return checks


def repair(
    checks: list[Check],
    backend: BaseBackend,
    *,
    sync_report: SyncReport | None,
    now: datetime,
) -> list[Correction]:
    """Carry out each decision: cancel the surplus events it names, then record the
    correcting rows it names (the caller delivers them, then :func:`confirm_delivery`)."""
    corrections: list[Correction] = []
    for check in checks:
        decision = check.decision
        if decision.action == MeteredAction.CANCEL:
            decision = _cancel(check, backend, now=now)
        if decision.corrections:
            corrections.append(_record(check, decision, sync_report))
    return corrections


def confirm_delivery(corrections: list[Correction]) -> None:
    """An entry is repaired only if Stripe accepted its correcting rows."""
    ids = [i for correction in corrections for i in correction.event_ids]
    if not ids:
        return
    found = UsageEvent.objects.filter(pk__in=ids).values_list("pk", "status", "last_error_code")
    status = {pk: state for pk, state, _ in found}
    errors = {pk: code for pk, _, code in found}
    for correction in corrections:
        unsent = [i for i in correction.event_ids if status.get(i) != UsageEvent.Status.SENT]
        if unsent:
            correction.entry.applied = False
            code = errors.get(unsent[0]) or "pending"
            correction.entry.detail += f"; not delivered yet ({code}): the worker keeps trying"


def _plan_pair(
    customer: str,
    metric: Metric,
    meter_id: str,
    period: tuple[datetime | None, datetime | None],
    *,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    horizon: datetime,
    legacy: bool,
) -> Pair | MeteredEntry:
    """The pair to compare, or the skipped entry saying why it can't be compared."""
    period_start, period_end = period
    start = since or period_start
    limit = until or period_end
    if legacy:
        return _skipped(customer, metric, start, min(limit or now, now), LEGACY_SKIPPED)
    if not meter_id:
        return _skipped(customer, metric, start, min(limit or now, now), NO_METER_SKIPPED)
    if start is None:
        return _skipped(customer, metric, None, None, NO_PERIOD_SKIPPED)
    start = minute_floor(start)
    end = horizon if limit is None else min(minute_floor(limit), horizon)
    if end <= start:
        # Reported as the period asked about, never as the empty span before the horizon.
        shown = None if limit is None else minute_floor(limit)
        return _skipped(customer, metric, start, shown, SETTLING_SKIPPED)
    open_period = (
        period_start is not None
        and period_end is not None
        and start >= minute_floor(period_start)
        and period_end > now
    )
    return Pair(customer, metric, meter_id, start, end, open_period)


def _observe(
    pair: Pair, ledger: LedgerSide, stripe: int | None, read_error: str, *, now: datetime
) -> Observed:
    """What :func:`decide` needs to know of ``pair``; cancellable events are looked for only
    when Stripe has more than the ledger."""
    surplus = stripe is not None and stripe > ledger.total
    return Observed(
        formula=pair.metric.aggregation,
        ledger=ledger.total,
        stripe=stripe,
        read_error=read_error,
        in_flight=ledger.in_flight,
        just_sent=ledger.just_sent,
        sent_seconds_ago=_seconds_since(ledger.last_sent, now=now),
        awaiting=ledger.awaiting,
        too_old=too_old_for_stripe(pair.correction_at, now=now + CORRECTION_LEEWAY),
        open_period=pair.open_period,
        cancellable=surplus and _cancellable(pair, now=now).exists(),
    )


def _read_stripe(
    pairs: list[Pair],
    backend: BaseBackend,
    *,
    done: int,
    progress: Callable[[int], None] | None,
) -> dict[Pair, tuple[int | None, str]]:
    """Stripe's total of each pair, or why it couldn't be read, in ``pairs``' order;
    ``progress`` gets the number of pairs done (``done`` of them before these)."""

    def ask(pair: Pair) -> tuple[int | None, str]:
        query = UsageQuery(
            pair.meter_id,
            pair.metric.meter_event_name,
            pair.metric.aggregation,
            pair.customer_id,
            pair.start,
            pair.end,
        )
        try:
            return backend.usage_total(query).value, ""
        except ReadNotSupported as exc:
            return None, str(exc)
        except Exception as exc:
            return None, f"{type(exc).__name__}: {redact(str(exc))}"

    totals: dict[Pair, tuple[int | None, str]] = {}
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="billflow-sync") as pool:
        answers = zip(pairs, pool.map(ask, pairs), strict=True)
        for count, (pair, answer) in enumerate(answers, start=done + 1):
            totals[pair] = answer
            if progress is not None:
                progress(count)
    return totals


def _cancel(check: Check, backend: BaseBackend, *, now: datetime) -> Decision:
    """Cancel the known surplus events; returns the decision for what they didn't cover."""
    cancelled = _cancel_known(check.pair, backend, check.decision.to_cancel, now=now)
    decision = decide(replace(check.observed, cancelled=cancelled))
    entry = check.entry
    entry.action, entry.detail, entry.applied = decision.action, decision.detail, decision.repaired
    return decision


def _record(check: Check, decision: Decision, sync_report: SyncReport | None) -> Correction:
    """Record the decision's correcting rows (without delivering them)."""
    from billflow_usage.ledger import record_usage

    pair, entry, values = check.pair, check.entry, decision.corrections
    ids: list[int] = []
    try:
        for index, value in enumerate(values):
            row = record_usage(
                pair.metric,
                pair.customer_id,
                value,
                timestamp=pair.correction_at,
                identifier=_identifier(pair, check.observed, decision.action, index),
                source=sync_report,
            )
            ids.append(row.pk)
    except InvalidUsage as exc:
        # E.g. an earlier correction of the same drift failed for good: it is in the
        # failed events list, to retry from the admin.
        entry.detail = f"could not record the correction: {exc}"
        return Correction(entry, tuple(ids))
    entry.detail = f"recorded {len(ids)} correcting event(s) of {values[0]:+d}" + (
        "" if len(values) == 1 else " each"
    )
    entry.applied = True  # confirmed (or withdrawn) by confirm_delivery()
    logger.info(
        "billflow_sync: %s %s for %s: %s",
        entry.action,
        pair.metric.key,
        pair.customer_id,
        entry.detail,
    )
    return Correction(entry, tuple(ids))


def _identifier(pair: Pair, observed: Observed, action: MeteredAction, index: int) -> str:
    """Deterministic: the same drift of the same period gets the same rows on a re-run; the
    installation's namespace keeps the same drift of another database apart."""
    parts = (
        pair.customer_id,
        pair.metric.key,
        pair.start.isoformat(),
        observed.ledger,
        observed.stripe,
    )
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


def _ledger_sides(pairs: list[Pair], *, now: datetime, settling: float) -> dict[Pair, LedgerSide]:
    """What the ledger holds of each pair: pairs of one metric and period are counted
    together, :data:`CHUNK` customers at a time."""
    groups: dict[tuple[int, datetime, datetime], list[Pair]] = defaultdict(list)
    for pair in pairs:
        groups[(pair.metric.pk, pair.start, pair.end)].append(pair)
    unsettled = now - timedelta(seconds=settling)
    sides: dict[Pair, LedgerSide] = {}
    for (metric_pk, start, end), members in groups.items():
        by_customer = {p.customer_id: p for p in members}
        customers = sorted(by_customer)
        for offset in range(0, len(customers), CHUNK):
            chunk = customers[offset : offset + CHUNK]
            rows = UsageEvent.objects.filter(
                metric_id=metric_pk, customer_id__in=chunk
            ).billed_between(start, end)
            totals = usage_totals(
                [Window(metric_pk, start, end)],
                customers=chunk,
                statuses=[UsageEvent.Status.SENT],
                by="customer_id",
            )
            awaiting = set(
                rows.filter(identifier__startswith=CORRECTION_PREFIX)
                .filter(
                    Q(status=UsageEvent.Status.PENDING)
                    | Q(status=UsageEvent.Status.SENT, sent_at__gt=unsettled)
                )
                .values_list("customer_id", flat=True)
            )
            unmarked = rows.filter(
                Q(attempts__gt=0) | Q(claimed_until__isnull=False),
                status=UsageEvent.Status.PENDING,
            ).exclude(identifier__startswith=CORRECTION_PREFIX)  # those are ``awaiting``
            in_flight = dict(
                unmarked.order_by()
                .values("customer_id")
                .annotate(count=Count("pk"))
                .values_list("customer_id", "count")
            )
            recent = _just_sent(rows, since=unsettled)
            for customer in chunk:
                just_sent, last_sent = recent.get(customer, (0, None))
                sides[by_customer[customer]] = LedgerSide(
                    total=totals.get((metric_pk, customer), 0),
                    in_flight=in_flight.get(customer, 0),
                    awaiting=customer in awaiting,
                    just_sent=just_sent,
                    last_sent=last_sent,
                )
    return sides


def _just_sent(
    rows: QuerySet[UsageEvent], *, since: datetime
) -> dict[str, tuple[int, datetime | None]]:
    """Per customer, the rows Stripe accepted at ``since`` or later and when the last was:
    Stripe counts meter events asynchronously, so they may be missing from its total yet.
    Inclusive, so with no settling window what this run's own delivery step sent (at the
    run's start under a frozen clock, after it otherwise) still counts."""
    recent = (
        rows.filter(status=UsageEvent.Status.SENT, sent_at__gte=since)
        .exclude(identifier__startswith=CORRECTION_PREFIX)  # those are ``awaiting``
        .order_by()
        .values("customer_id")
        .annotate(count=Count("pk"), last=Max("sent_at"))
        .values_list("customer_id", "count", "last")
    )
    return {customer: (count, last) for customer, count, last in recent}


def _seconds_since(moment: datetime | None, *, now: datetime) -> int:
    """Whole seconds from ``moment`` to ``now``; 0 for none, or a moment after ``now`` (sent
    while this run was under way)."""
    if moment is None:
        return 0
    return max(0, int((now - moment).total_seconds()))


def _entry(pair: Pair, observed: Observed, decision: Decision) -> MeteredEntry:
    if decision.status == MeteredStatus.SKIPPED:
        return _skipped(pair.customer_id, pair.metric, pair.start, pair.end, decision.detail)
    difference = None if observed.stripe is None else observed.stripe - observed.ledger
    return MeteredEntry(
        customer_id=pair.customer_id,
        metric=pair.metric.key,
        formula=pair.metric.aggregation,
        period_start=pair.start,
        period_end=pair.end,
        ledger=observed.ledger,
        stripe=observed.stripe,
        difference=difference,
        status=decision.status,
        action=decision.action,
        detail=decision.detail,
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
        status=MeteredStatus.SKIPPED,
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
