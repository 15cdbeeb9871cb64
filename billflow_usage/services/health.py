"""Is usage reaching Stripe? The figures behind ``manage.py billflow_status``, the admin
index's summary and the Prometheus gauges, and one verdict on them.

:func:`read_figures` asks the database a few cheap questions (the pending rows go through
the partial index on pending rows, failed rows through the one on failed rows; the last
delivery is read among the newest delivered rows, never by scanning the ledger).
:func:`assess` is pure: figures and thresholds in, problems out, each problem degrading
(exit 1) or breaking (exit 2) the verdict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from billflow_usage.backends.base import CREDENTIAL_CODES
from billflow_usage.conf import billflow_settings
from billflow_usage.models import SubscriptionItemLink, SyncReport, UsageEvent
from billflow_usage.reconcile.report import METERED_DRIFT, SEAT_DRIFT

#: The last delivery is the latest ``sent_at`` among this many most recently recorded
#: delivered rows: an index walk, not a scan of the whole ledger.
RECENT_DELIVERIES = 1000
#: The metric label of rows kept without a metric (a tracker naming an unknown one).
NO_METRIC = "none"


class State(IntEnum):
    """The verdict, and ``billflow_status``'s exit code."""

    HEALTHY = 0
    DEGRADED = 1
    BROKEN = 2


@dataclass(frozen=True)
class Thresholds:
    """What degrades or breaks the verdict (``STATUS_*`` settings, or command options)."""

    #: Seconds the oldest pending row may wait before delivery counts as lagging.
    max_lag: float
    #: Failed rows tolerated before the ledger counts as degraded.
    max_failed: int
    #: Seconds rows may keep failing to reach Stripe, with nothing delivered meanwhile,
    #: before Stripe counts as unreachable.
    unreachable_after: float

    @classmethod
    def from_settings(cls, **overrides: float | None) -> Thresholds:
        """The ``STATUS_*`` settings, with the overrides that are not None."""
        values = {
            "max_lag": billflow_settings.STATUS_MAX_LAG,
            "max_failed": billflow_settings.STATUS_MAX_FAILED,
            "unreachable_after": billflow_settings.STATUS_UNREACHABLE_AFTER,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class Pending:
    """Pending rows of one metric that share a last error code ("" while never refused)."""

    metric: str
    code: str
    count: int
    oldest: datetime


@dataclass(frozen=True)
class LastSync:
    """The latest finished ``billflow_sync`` run."""

    report_id: int
    finished_at: datetime | None
    status: str
    drift_remaining: int
    #: Unrepaired drift entries (metered, seats, unbilled usage) by metric key.
    drift_by_metric: dict[str, int]
    #: Keys of metered metrics that had no Stripe meter after the run.
    meters_missing: list[str]
    error_message: str = ""


@dataclass(frozen=True)
class Figures:
    """What the database says, at ``now``."""

    now: datetime
    pending: list[Pending]
    failed_by_code: dict[str, int]
    last_delivery: datetime | None
    #: The credential codes seat links wait on (their last push was refused for our key).
    refused_link_codes: list[str]
    last_sync: LastSync | None

    @property
    def backlog(self) -> int:
        return sum(group.count for group in self.pending)

    @property
    def backlog_by_metric(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for group in self.pending:
            counts[group.metric] += group.count
        return dict(sorted(counts.items()))

    @property
    def oldest_pending_by_metric(self) -> dict[str, float]:
        """Seconds the oldest pending row of each metric has waited since it was recorded."""
        ages: dict[str, float] = {}
        for group in self.pending:
            age = max(0.0, (self.now - group.oldest).total_seconds())
            ages[group.metric] = max(age, ages.get(group.metric, 0.0))
        return dict(sorted(ages.items()))

    @property
    def oldest_pending_age(self) -> float | None:
        return max(self.oldest_pending_by_metric.values(), default=None)

    @property
    def failed(self) -> int:
        return sum(self.failed_by_code.values())

    @property
    def credential_code(self) -> str:
        """A credential code rows or seat pushes wait on ("" when the key works)."""
        codes = {g.code for g in self.pending if g.code in CREDENTIAL_CODES}
        return min(codes | set(self.refused_link_codes), default="")

    @property
    def stalled_for(self) -> float | None:
        """Seconds without progress while pending rows keep failing: since the later of the
        oldest failing row's recording and the last delivery (None while no pending row
        has an error)."""
        failing = [g.oldest for g in self.pending if g.code]
        if not failing:
            return None
        since = min(failing)
        if self.last_delivery is not None:
            since = max(since, self.last_delivery)
        return max(0.0, (self.now - since).total_seconds())


@dataclass(frozen=True)
class Problem:
    state: State
    #: A stable name for scripts (``--json``): lag, failed, credentials, unreachable, ...
    code: str
    message: str


@dataclass(frozen=True)
class Health:
    figures: Figures
    thresholds: Thresholds
    problems: list[Problem] = field(default_factory=list)

    @property
    def state(self) -> State:
        return max((p.state for p in self.problems), default=State.HEALTHY)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document (times ISO 8601, durations in seconds)."""
        figures = self.figures
        return {
            "status": self.state.name.lower(),
            "exit_code": int(self.state),
            "checked_at": figures.now,
            "problems": [
                {"level": p.state.name.lower(), "code": p.code, "message": p.message}
                for p in self.problems
            ],
            "backlog": figures.backlog,
            "backlog_by_metric": figures.backlog_by_metric,
            "oldest_pending_age": figures.oldest_pending_age,
            "oldest_pending_age_by_metric": figures.oldest_pending_by_metric,
            "failed_by_code": figures.failed_by_code,
            "last_delivery": figures.last_delivery,
            "credentials": figures.credential_code or "ok",
            "last_sync": None if figures.last_sync is None else asdict(figures.last_sync),
            "thresholds": asdict(self.thresholds),
        }


def check_health(thresholds: Thresholds | None = None, *, now: datetime | None = None) -> Health:
    """Read the figures and judge them (thresholds from the settings by default)."""
    limits = thresholds or Thresholds.from_settings()
    figures = read_figures(now=now)
    return Health(figures, limits, assess(figures, limits))


def read_figures(*, now: datetime | None = None) -> Figures:
    """The ledger's health figures: five small queries."""
    return Figures(
        now=now or timezone.now(),
        pending=_pending(),
        failed_by_code=_failed_by_code(),
        last_delivery=_last_delivery(),
        refused_link_codes=sorted(
            SubscriptionItemLink.objects.filter(active=True, last_error_code__in=CREDENTIAL_CODES)
            .order_by()
            .values_list("last_error_code", flat=True)
            .distinct()
        ),
        last_sync=_last_sync(),
    )


def assess(figures: Figures, limits: Thresholds) -> list[Problem]:
    """Each problem the figures show, broken ones first."""
    problems = [*_broken(figures, limits), *_degraded(figures, limits)]
    return sorted(problems, key=lambda p: -p.state)


def _broken(figures: Figures, limits: Thresholds) -> Iterable[Problem]:
    if figures.credential_code:
        yield Problem(
            State.BROKEN,
            "credentials",
            f"Stripe refuses our key ({figures.credential_code}): nothing is delivered until "
            "it works. Set a valid key (BILLFLOW_USAGE['STRIPE_API_KEY'] or dj-stripe's) with "
            "the permissions billflow_usage needs; waiting usage is then sent, once.",
        )
    stalled = figures.stalled_for
    if stalled is not None and stalled >= limits.unreachable_after and not figures.credential_code:
        codes = sorted({g.code for g in figures.pending if g.code})
        yield Problem(
            State.BROKEN,
            "unreachable",
            f"Nothing reached Stripe for {_duration(stalled)} while pending rows keep failing "
            f"({', '.join(codes)}): check the network path to Stripe and Stripe's status; "
            "rows retry by themselves once it answers.",
        )
    sync = figures.last_sync
    if sync is not None and sync.meters_missing:
        yield Problem(
            State.BROKEN,
            "meters_missing",
            f"No Stripe meter bills {', '.join(sync.meters_missing)} (last billflow_sync): "
            "Stripe refuses their events. Run manage.py billflow_sync --create-meters.",
        )


def _degraded(figures: Figures, limits: Thresholds) -> Iterable[Problem]:
    age = figures.oldest_pending_age
    if age is not None and age > limits.max_lag:
        yield Problem(
            State.DEGRADED,
            "lag",
            f"The oldest pending row has waited {_duration(age)} (more than "
            f"{_duration(limits.max_lag)}): are billflow_worker processes running and keeping "
            "up?",
        )
    if figures.failed > limits.max_failed:
        codes = ", ".join(f"{code or '?'}: {n}" for code, n in figures.failed_by_code.items())
        yield Problem(
            State.DEGRADED,
            "failed",
            f"{figures.failed} usage row(s) failed ({codes}): see the failed rows in the admin "
            "(or billflow_sync's report), fix the cause and retry them.",
        )
    sync = figures.last_sync
    if sync is not None and sync.status == SyncReport.Status.FAILED:
        yield Problem(
            State.DEGRADED,
            "sync_failed",
            f"The last billflow_sync run failed: {sync.error_message or 'see its report'}.",
        )


def _pending() -> list[Pending]:
    rows = (
        UsageEvent.objects.filter(status=UsageEvent.Status.PENDING)
        .order_by()
        .values_list("metric__key", "last_error_code")
        .annotate(count=Count("pk"), oldest=Min("created_at"))
    )
    return [Pending(key or NO_METRIC, code, count, oldest) for key, code, count, oldest in rows]


def _failed_by_code() -> dict[str, int]:
    rows = (
        UsageEvent.objects.filter(status=UsageEvent.Status.FAILED)
        .order_by()
        .values_list("last_error_code")
        .annotate(count=Count("pk"))
    )
    return dict(sorted(rows))


def _last_delivery() -> datetime | None:
    recent = (
        UsageEvent.objects.filter(status=UsageEvent.Status.SENT)
        .order_by("-pk")
        .values_list("sent_at", flat=True)[:RECENT_DELIVERIES]
    )
    return max((sent for sent in recent if sent is not None), default=None)


def _last_sync() -> LastSync | None:
    report = (
        SyncReport.objects.exclude(status=SyncReport.Status.RUNNING)
        .order_by("-started_at", "-pk")
        .first()
    )
    if report is None:
        return None
    document: Mapping[str, Any] = report.report or {}
    return LastSync(
        report_id=report.pk,
        finished_at=report.finished_at,
        status=report.status,
        drift_remaining=report.drift_remaining,
        drift_by_metric=drift_by_metric(document),
        meters_missing=sorted(
            str(m.get("metric", "")) for m in document.get("meters", []) if not m.get("meter_id")
        ),
        error_message=report.error_message,
    )


def drift_by_metric(document: Mapping[str, Any]) -> dict[str, int]:
    """Unrepaired drift entries of a stored report by metric: metered and seat drift left
    unrepaired, and unbilled usage."""
    counts: Counter[str] = Counter()
    unrepaired = [
        *(e for e in document.get("metered", []) if e.get("status") in METERED_DRIFT),
        *(e for e in document.get("seats", []) if e.get("status") in SEAT_DRIFT),
    ]
    for entry in [*unrepaired, *document.get("unbilled", [])]:
        if not entry.get("applied"):
            counts[str(entry.get("metric", ""))] += 1
    return dict(sorted(counts.items()))


def _duration(seconds: float) -> str:
    """``90`` -> ``1 min 30 s``; ``7200`` -> ``2 h 0 min``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
