"""``run_setup``: one pass from the declared metrics to ready.

It leans on reconciliation for what reconciliation already does: one ``run_sync`` with
meters created and found (``create_meters``), subscription item links refreshed and nothing
delivered, which is also the dry comparison whose leftovers (unbilled usage, drift, failed
events) say what is still missing. With ``check`` that run is a dry run and nothing is
written, not even its report. Then each metric's meter and price are checked in Stripe.
"""

from __future__ import annotations

import copy
from collections import Counter

from billflow_usage.backends import get_backend
from billflow_usage.backends.base import BaseBackend, RemoteMeter
from billflow_usage.conf import billflow_settings
from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.reconcile import SyncOptions, run_sync
from billflow_usage.reconcile.report import MeteredEntry, MeterEntry, Report, SeatEntry
from billflow_usage.services.backend_access import describe_failure
from billflow_usage.services.meter_check import check_meter
from billflow_usage.services.setup.declared import SETUP, declared_lacks
from billflow_usage.services.setup.prices import price_ok, price_problem, wrong_price_fix
from billflow_usage.services.setup.report import SetupReport, State

APPLY = "python manage.py billflow_sync --apply"
SUBSCRIBE = f"subscribe the customer to the metric's price in Stripe, then {SETUP}"
METER_FIX = (
    "make the meter and the metric agree: in the Stripe Dashboard (reactivate it), or give the "
    "metric the meter's event name and formula (a new metric with a new event name changes a "
    "formula)"
)


def run_setup(*, check: bool, backend: BaseBackend | None = None) -> SetupReport:
    """Make (unless ``check``) and verify everything the active metrics need."""
    report = SetupReport(check=check)
    if not Metric.objects.filter(active=True).exists():
        report.add(
            "metrics",
            "",
            State.MISSING,
            "No active metric is declared, so nothing is billed.",
            "create a Metric: in the admin (Usage billing > Metrics), in a data migration, "
            "or with python manage.py shell",
        )
        return report
    own = backend is None
    sink = backend or get_backend(rate_limit=float(billflow_settings.SYNC_RATE_LIMIT) or None)
    try:
        sync = run_sync(
            SyncOptions(dry_run=check, create_meters=True, deliver=False, keep=not check),
            backend=sink,
        )
        metrics = list(Metric.objects.filter(active=True).order_by("key"))
        legacy = billflow_settings.METER_API == "legacy"
        meter_ids = _meters(report, metrics, sync, sink, legacy=legacy)
        _prices(report, metrics, sink, meter_ids, legacy=legacy)
        _links(report, metrics, sync)
        _leftovers(report, sync)
    finally:
        if own:
            sink.close()
    return report


def _meters(
    report: SetupReport,
    metrics: list[Metric],
    sync: Report,
    backend: BaseBackend,
    *,
    legacy: bool,
) -> dict[str, str]:
    """Each metered metric's meter, made or found by the run, checked in Stripe; returns
    metric key -> meter ID."""
    metered = [m for m in metrics if m.is_metered]
    if legacy or not metered:
        return {}
    remote: list[RemoteMeter] | None
    try:
        remote = backend.list_meters()
    except Exception as exc:
        report.add(
            "meters",
            "",
            State.MISSING,
            f"Could not check the meters: {describe_failure(exc).message}",
        )
        remote = None
    entries = {entry.metric: entry for entry in sync.meters}
    found: dict[str, str] = {}
    for metric in metered:
        entry = entries.get(metric.key)
        meter_id = metric.stripe_meter_id or (entry.meter_id if entry else "")
        if not meter_id:
            _no_meter(report, metric, entry)
            continue
        found[metric.key] = meter_id
        if entry is not None and not entry.applied:
            report.add(
                "meters",
                metric.key,
                State.MISSING,
                f"Stripe's meter {meter_id} counts '{metric.meter_event_name}' events, but "
                "its ID is not stored on the metric.",
                SETUP,
            )
        elif entry is not None:
            made = "Created" if entry.action == "created" else "Stored the ID of"
            report.add("meters", metric.key, State.DONE, f"{made} meter {meter_id}.")
        if remote is not None:
            verdict = check_meter(_with_meter(metric, meter_id), remote)
            if not verdict.ok:
                report.add("meters", metric.key, State.MISSING, verdict.message, METER_FIX)
            elif entry is None:
                report.add("meters", metric.key, State.OK, verdict.message)
    return found


def _no_meter(report: SetupReport, metric: Metric, entry: MeterEntry | None) -> None:
    message = (
        f"No active Stripe meter counts '{metric.meter_event_name}' events, so Stripe refuses "
        "this metric's usage."
    )
    if report.check:
        report.add("meters", metric.key, State.MISSING, message, SETUP)
        return
    why = entry.detail if entry is not None and entry.detail else "it could not be created"
    report.add(
        "meters",
        metric.key,
        State.MISSING,
        f"{message} ({why})",
        f"fix what the errors below say, then {SETUP}",
    )


def _with_meter(metric: Metric, meter_id: str) -> Metric:
    """``metric`` as if ``meter_id`` were stored (a dry run found it but stores nothing)."""
    if metric.stripe_meter_id == meter_id:
        return metric
    found = copy.copy(metric)
    found.stripe_meter_id = meter_id
    return found


def _prices(
    report: SetupReport,
    metrics: list[Metric],
    backend: BaseBackend,
    meter_ids: dict[str, str],
    *,
    legacy: bool,
) -> None:
    for metric in metrics:
        if not metric.stripe_price_id:
            _without_price(report, metric, legacy=legacy)
            continue
        try:
            price = backend.retrieve_price(metric.stripe_price_id)
        except Exception as exc:
            report.add(
                "prices",
                metric.key,
                State.MISSING,
                f"Could not read price {metric.stripe_price_id}: {describe_failure(exc).message}",
            )
            continue
        problem = price_problem(
            metric, price, meter_id=meter_ids.get(metric.key, ""), legacy=legacy
        )
        if problem is not None or price is None:
            report.add("prices", metric.key, State.MISSING, problem or "", wrong_price_fix(metric))
        else:
            report.add("prices", metric.key, State.OK, price_ok(metric, price))


def _without_price(report: SetupReport, metric: Metric, *, legacy: bool) -> None:
    """A metric with no price: what the system check says, or (a metered metric on a meter)
    a note on how its items are found instead."""
    if metric.is_metered and not legacy:
        report.add(
            "prices",
            metric.key,
            State.NOTE,
            "No price stored: its subscription items are found by a metered price on its meter.",
        )
        return
    for lack in declared_lacks(metric, legacy=legacy):
        report.add("prices", metric.key, State.MISSING, lack.message, lack.fix)


def _links(report: SetupReport, metrics: list[Metric], sync: Report) -> None:
    """Links the run made, changed or would make, and how many customers each metric has."""
    pending: Counter[str] = Counter()
    for change in sync.items:
        item = change.subscription_item_id or change.previous_item_id
        what = f"{change.customer_id}'s subscription item {item}: {change.action}"
        if change.applied:
            report.add("links", change.metric, State.DONE, f"{what}.")
        else:
            report.add("links", change.metric, State.MISSING, f"{what} (not stored yet).", SETUP)
            if change.action in ("created", "attached"):
                pending[change.metric] += 1
    linked = Counter(
        SubscriptionItemLink.objects.filter(active=True, metric__in=metrics)
        .exclude(stripe_subscription_item_id="")
        .values_list("metric__key", flat=True)
    )
    for metric in metrics:
        count = linked[metric.key] + pending[metric.key]
        if count:
            report.add("links", metric.key, State.OK, f"{count} customer(s) subscribed.")
        else:
            report.add(
                "links",
                metric.key,
                State.NOTE,
                "No customer has a subscription item for this metric yet: subscribe customers "
                f"to its price, then run {SETUP} (or billflow_sync) to link them.",
            )


def _leftovers(report: SetupReport, sync: Report) -> None:
    """What the comparison left: usage no item bills, drift, failed events, Stripe errors."""
    before = len(report.missing)
    for unbilled in sync.unbilled:
        report.add(
            "sync",
            unbilled.metric,
            State.MISSING,
            f"{unbilled.customer_id} has {unbilled.events} event(s) ({unbilled.value}) that no "
            f"subscription item bills: {unbilled.reason}.",
            SUBSCRIBE,
        )
    drifting: list[MeteredEntry | SeatEntry] = [*sync.metered, *sync.seats]
    for entry in drifting:
        if entry.is_drift:
            why = entry.detail or "the ledger and Stripe differ"
            report.add(
                "sync",
                entry.metric,
                State.MISSING,
                f"{entry.customer_id}: {entry.status} ({why}).",
                APPLY,
            )
    failed = sync.counts.get("failed_billable", 0)
    if failed:
        report.add(
            "sync",
            "",
            State.MISSING,
            f"{failed} failed event(s) of subscribed customers.",
            "python manage.py billflow_sync lists why; retry them in the admin (Usage events) "
            "once fixed",
        )
    for error in sync.errors:
        if error.code != "formula_mismatch":  # reported with the meter
            report.add(
                "sync",
                error.metric,
                State.MISSING,
                f"Stripe could not be asked ({error.step}): {error.code}: {error.message}",
            )
    if len(report.missing) == before:
        report.add("sync", "", State.OK, "A dry reconciliation finds nothing missing.")
