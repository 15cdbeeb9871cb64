"""The ``billflow_sync`` report: dataclasses, the ``--json`` document and the human table.

JSON schema (``schema_version`` 1; keys are stable; keys added later within version 1 are
marked *(added)*, and a reader of version 1 may ignore them):

``schema_version`` (int), ``report_id`` (the stored ``SyncReport`` pk), ``mode``
(``dry_run`` | ``check`` | ``apply``), ``started_at`` / ``finished_at`` (ISO 8601),
``options`` {``metrics``, ``customers`` (lists, empty = all), ``since``, ``until`` (ISO or
null), ``settling_window`` (s), ``create_meters``, ``items_from``},
``summary`` {see :data:`SUMMARY_KEYS`, all ints; *(added)* ``meters_missing``: metered
metrics without a Stripe meter, ``failed_billable``: failed events of customers that have a
live subscription item for the metric; both are part of ``drift_remaining``},
``meters`` [{``metric``, ``event_name``, ``meter_id``, ``action`` (found | created | missing),
``applied``, *(added)* ``detail`` (what to do about a missing meter)}] (none with
``METER_API`` ``legacy``, whose usage records no meter counts),
``items`` [{``customer_id``, ``metric``, ``action`` (created | attached | replaced |
deactivated), ``subscription_id``, ``subscription_item_id``, ``previous_item_id``,
``detail``, ``applied``}],
``delivery`` (``DeliveryStats`` counts, or null when nothing was delivered: dry run),
``metered`` [{``customer_id``, ``metric``, ``formula``, ``period_start``, ``period_end``,
``ledger``, ``stripe``, ``difference`` (stripe - ledger), ``status`` (missing_in_stripe |
surplus_in_stripe | mismatch | skipped | error), ``action`` (correct | offset | cancel |
needs_credit_note | needs_invoice_item | awaiting_correction | none), ``applied``,
``detail``}] (pairs in sync are only counted),
``seats`` [{``customer_id``, ``metric``, ``subscription_item_id``, ``recomputed``,
``desired``, ``stripe`` (after the run's pushes), ``status`` (desired_stale |
stripe_differs | error), ``action`` (set_quantity | push | none), ``applied``, ``detail``}],
``unbilled`` [{``customer_id``, ``metric``, ``events``, ``value``, ``reason``}],
``failed_events`` [{``identifier``, ``customer_id``, ``metric``, ``value``, ``occurred_at``,
``code``, ``message``, *(added)* ``action`` (retry | record_again | none: the customer has
no live item, see ``unbilled``), *(added)* ``detail`` (what to do)}] (the newest 500;
``summary.failed_events`` counts all),
``errors`` [{``step``, ``customer_id``, ``metric``, ``code``, ``message``}],
*(added)* ``left_out`` {list: number of its entries not in this document} (only lists with
some left out; ``failed_events`` beyond the newest 500 in both documents).

``drift_remaining`` counts what still needs someone: metered and seat drift this run did
not repair, unbilled usage, metered metrics without a meter, and billable failed events.

The stored ``SyncReport`` (:func:`for_storage`) keeps at most :data:`MAX_STORED_ENTRIES`
entries of each list (``options.customers`` and ``options.metrics`` too, and
``SyncReport.changes``): unrepaired drift, errors and missing meters first, then what the
run changed, then the rest, each in their order. Each text is cut to
:data:`MAX_STORED_TEXT` characters. ``summary`` keeps the full counts, and ``left_out``
names each cut list (``changes`` for ``SyncReport.changes``) with the number of entries
dropped. ``--json`` prints every entry of the run: it goes to the operator, not to a row
that the admin renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from billflow_usage.reconcile.metered_decision import MeteredAction, MeteredStatus

SCHEMA_VERSION = 1
MAX_FAILED_LISTED = 500
#: Entries of one list that a stored report keeps (the admin pages through them).
MAX_STORED_ENTRIES = 500
#: Characters of one text that a stored report keeps (Stripe's messages, details).
MAX_STORED_TEXT = 1000

SUMMARY_KEYS = (
    "customers",
    "metrics",
    "stripe_requests",
    "meters_created",
    "links_created",
    "links_updated",
    "links_deactivated",
    "metered_checked",
    "metered_in_sync",
    "metered_drift",
    "metered_repaired",
    "metered_skipped",
    "seats_checked",
    "seats_drift",
    "seats_repaired",
    "unbilled",
    "failed_events",
    "errors",
    "drift_remaining",
    "meters_missing",
    "failed_billable",
)

#: Metered statuses and seat statuses that are drift (``skipped``/``error`` are not).
METERED_DRIFT = (
    MeteredStatus.MISSING_IN_STRIPE,
    MeteredStatus.SURPLUS_IN_STRIPE,
    MeteredStatus.MISMATCH,
)
SEAT_DRIFT = ("desired_stale", "stripe_differs")


@dataclass
class MeterEntry:
    metric: str
    event_name: str
    meter_id: str
    action: str
    applied: bool = False
    detail: str = ""

    @property
    def is_missing(self) -> bool:
        """No meter bills the metric's usage (Stripe refuses its events) after this run."""
        return not self.meter_id


@dataclass
class ItemChange:
    customer_id: str
    metric: str
    action: str
    subscription_id: str = ""
    subscription_item_id: str = ""
    previous_item_id: str = ""
    detail: str = ""
    applied: bool = False


@dataclass
class MeteredEntry:
    customer_id: str
    metric: str
    formula: str
    period_start: datetime | None
    period_end: datetime | None
    ledger: int | None
    stripe: int | None
    difference: int | None
    status: MeteredStatus
    action: MeteredAction = MeteredAction.NONE
    applied: bool = False
    detail: str = ""

    @property
    def is_drift(self) -> bool:
        return self.status in METERED_DRIFT


@dataclass
class SeatEntry:
    customer_id: str
    metric: str
    subscription_item_id: str
    recomputed: int | None
    desired: int | None
    stripe: int | None
    status: str
    action: str = "none"
    applied: bool = False
    detail: str = ""

    @property
    def is_drift(self) -> bool:
        return self.status in SEAT_DRIFT


@dataclass
class UnbilledEntry:
    customer_id: str
    metric: str
    events: int
    value: int
    reason: str


@dataclass
class FailedEvent:
    identifier: str
    customer_id: str
    metric: str
    value: int
    occurred_at: datetime
    code: str
    message: str
    action: str = "none"
    detail: str = ""


@dataclass
class ErrorEntry:
    step: str
    customer_id: str
    metric: str
    code: str
    message: str


@dataclass
class Report:
    mode: str
    started_at: datetime
    options: dict[str, Any]
    report_id: int | None = None
    finished_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    meters: list[MeterEntry] = field(default_factory=list)
    items: list[ItemChange] = field(default_factory=list)
    delivery: dict[str, int] | None = None
    metered: list[MeteredEntry] = field(default_factory=list)
    seats: list[SeatEntry] = field(default_factory=list)
    unbilled: list[UnbilledEntry] = field(default_factory=list)
    failed_events: list[FailedEvent] = field(default_factory=list)
    errors: list[ErrorEntry] = field(default_factory=list)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    @property
    def drift_remaining(self) -> int:
        """What still needs someone after this run: unrepaired metered and seat drift,
        unbilled usage, metered metrics without a meter, billable failed events."""
        unrepaired = sum(1 for e in self.metered if e.is_drift and not e.applied)
        unrepaired += sum(1 for e in self.seats if e.is_drift and not e.applied)
        return (
            unrepaired
            + len(self.unbilled)
            + self.meters_missing
            + self.counts.get("failed_billable", 0)
        )

    @property
    def meters_missing(self) -> int:
        return sum(1 for e in self.meters if e.is_missing)

    def summary(self) -> dict[str, int]:
        values = {key: int(self.counts.get(key, 0)) for key in SUMMARY_KEYS}
        values.update(
            metered_drift=sum(1 for e in self.metered if e.is_drift),
            metered_repaired=sum(1 for e in self.metered if e.is_drift and e.applied),
            metered_skipped=sum(1 for e in self.metered if e.status == MeteredStatus.SKIPPED),
            seats_drift=sum(1 for e in self.seats if e.is_drift),
            seats_repaired=sum(1 for e in self.seats if e.is_drift and e.applied),
            unbilled=len(self.unbilled),
            errors=len(self.errors),
            drift_remaining=self.drift_remaining,
            meters_missing=self.meters_missing,
        )
        return values

    def changes(self) -> list[dict[str, Any]]:
        """What this run wrote (to the database or to Stripe), for ``SyncReport.changes``."""
        done: list[dict[str, Any]] = []
        for meter in self.meters:
            if meter.applied:
                done.append({"kind": "meter", **_plain(asdict(meter))})
        for item in self.items:
            if item.applied:
                done.append({"kind": "item", **_plain(asdict(item))})
        for entry in self.metered:
            if entry.applied:
                done.append({"kind": "metered", **_plain(asdict(entry))})
        for seat in self.seats:
            if seat.applied:
                done.append({"kind": "seat", **_plain(asdict(seat))})
        return done

    def as_json(self) -> dict[str, Any]:
        """The documented ``--json`` document (see the module docstring)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "report_id": self.report_id,
            "mode": self.mode,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "options": _plain(self.options),
            "summary": self.summary(),
            "meters": [_plain(asdict(e)) for e in self.meters],
            "items": [_plain(asdict(e)) for e in self.items],
            "delivery": self.delivery,
            "metered": [_plain(asdict(e)) for e in self.metered],
            "seats": [_plain(asdict(e)) for e in self.seats],
            "unbilled": [_plain(asdict(e)) for e in self.unbilled],
            "failed_events": [_plain(asdict(e)) for e in self.failed_events],
            "errors": [_plain(asdict(e)) for e in self.errors],
            "left_out": self._unlisted(),
        }

    def _unlisted(self) -> dict[str, int]:
        """Entries counted but not listed: failed events beyond the newest listed."""
        failed = self.counts.get("failed_events", 0) - len(self.failed_events)
        return {"failed_events": failed} if failed > 0 else {}


def for_storage(
    document: dict[str, Any], changes: list[dict[str, Any]], *, limit: int | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The copies of ``document`` and ``changes`` a ``SyncReport`` keeps: each list at most
    ``limit`` (:data:`MAX_STORED_ENTRIES`) entries, those that need someone first, each text
    at most :data:`MAX_STORED_TEXT` characters, and ``left_out`` counting what was dropped."""
    cap = MAX_STORED_ENTRIES if limit is None else limit
    left_out: dict[str, int] = dict(document.get("left_out") or {})
    stored = _fitted(document, "", cap, left_out)
    kept = _fitted(changes, "changes", cap, left_out)
    stored["left_out"] = left_out
    return stored, kept


def _fitted(value: Any, path: str, cap: int, left_out: dict[str, int]) -> Any:
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, dict):
        return {
            key: _fitted(item, f"{path}.{key}" if path else key, cap, left_out)
            for key, item in value.items()
        }
    if isinstance(value, list):
        entries = value
        if len(value) > cap:
            entries = sorted(value, key=_kept_first)[:cap]
            left_out[path] = left_out.get(path, 0) + len(value) - cap
        return [_fitted(entry, path, cap, left_out) for entry in entries]
    return value


def _kept_first(entry: Any) -> int:
    """0 for an entry someone must act on (unrepaired drift, an error, a missing meter),
    1 for a change the run made, 2 for the rest."""
    if not isinstance(entry, dict):
        return 2
    status = entry.get("status")
    if entry.get("applied"):
        return 1
    if (
        status in METERED_DRIFT + SEAT_DRIFT
        or status == "error"
        or entry.get("action") == "missing"
    ):
        return 0
    return 2


def clip(text: str) -> str:
    """``text`` cut to :data:`MAX_STORED_TEXT` characters (an ellipsis ends a cut one)."""
    return text if len(text) <= MAX_STORED_TEXT else text[: MAX_STORED_TEXT - 1] + "…"


def render_table(report: Report, *, verbosity: int = 1) -> list[str]:
    """The human report: a summary line per section, a table per section with entries."""
    s = report.summary()
    lines = [
        f"billflow_sync ({report.mode}): {s['customers']} customer(s), {s['metrics']} "
        f"metric(s), {s['stripe_requests']} Stripe request(s)",
    ]
    if report.meters and verbosity >= 1:
        lines += _section(
            "Meters", report.meters, ("metric", "event_name", "meter_id", "action"), details=True
        )
    if s["meters_missing"]:
        lines.append(
            f"{s['meters_missing']} metered metric(s) have no Stripe meter, so Stripe refuses "
            "their usage: run billflow_sync --create-meters"
        )
    lines.append(
        f"Subscription items: {s['links_created']} created, {s['links_updated']} updated, "
        f"{s['links_deactivated']} deactivated"
    )
    if verbosity >= 2 or any(i.action != "attached" for i in report.items):
        shown = [i for i in report.items if verbosity >= 2 or i.action != "attached"]
        lines += _section(
            "", shown, ("customer_id", "metric", "action", "subscription_item_id", "detail")
        )
    if report.delivery is not None:
        d = report.delivery
        lines.append(
            f"Delivered first: {d.get('delivered', 0)} event(s), {d.get('seats_pushed', 0)} "
            f"seat quantities; {d.get('retried', 0)} to retry, {d.get('failed', 0)} failed"
        )
    lines.append(
        f"Metered usage: {s['metered_checked']} checked, {s['metered_in_sync']} in sync, "
        f"{s['metered_drift']} drift ({s['metered_repaired']} repaired), "
        f"{s['metered_skipped']} skipped"
    )
    metered = [e for e in report.metered if verbosity >= 2 or e.status != MeteredStatus.SKIPPED]
    lines += _section(
        "",
        metered,
        (
            "customer_id",
            "metric",
            "period_start",
            "period_end",
            "ledger",
            "stripe",
            "difference",
            "status",
            "action",
            "applied",
        ),
        details=verbosity >= 1,
    )
    lines.append(
        f"Seats: {s['seats_checked']} checked, {s['seats_drift']} drift "
        f"({s['seats_repaired']} repaired)"
    )
    lines += _section(
        "",
        report.seats,
        ("customer_id", "metric", "recomputed", "desired", "stripe", "status", "action", "applied"),
        details=verbosity >= 1,
    )
    lines.append(f"Unbilled usage: {s['unbilled']} customer/metric pair(s)")
    lines += _section("", report.unbilled, ("customer_id", "metric", "events", "value", "reason"))
    failed = f"Failed events: {s['failed_events']}"
    if s["failed_billable"]:
        failed += (
            f" ({s['failed_billable']} of them billable: fix the cause, then retry them from "
            "the admin or record the usage again)"
        )
    lines.append(failed)
    lines += _section(
        "",
        report.failed_events if verbosity >= 2 else report.failed_events[:20],
        ("identifier", "customer_id", "metric", "value", "code", "action", "message"),
    )
    if report.errors:
        lines.append(f"Errors: {len(report.errors)}")
        lines += _section("", report.errors, ("step", "customer_id", "metric", "code", "message"))
    lines.append(f"Drift remaining: {s['drift_remaining']}")
    return lines


def _section(
    title: str, entries: Sequence[Any], columns: Sequence[str], *, details: bool = False
) -> list[str]:
    if not entries:
        return []
    rows = [[_cell(getattr(entry, name)) for name in columns] for entry in entries]
    lines = [title] if title else []
    notes = [getattr(e, "detail", "") for e in entries] if details else None
    lines += _table(list(columns), rows, details=notes)
    return lines


def _table(
    headers: list[str], rows: list[list[str]], *, details: list[str] | None = None
) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Iterable[str]) -> str:
        return "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(headers), line("-" * w for w in widths)]
    for index, row in enumerate(rows):
        out.append(line(row))
        if details and details[index]:
            out.append(f"      {details[index]}")
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def dataclass_keys(cls: type) -> list[str]:
    """The JSON keys of one entry type (the documented schema, for tests and docs)."""
    return [f.name for f in fields(cls)]


ProgressCallback = Callable[[str, int, int], None]
