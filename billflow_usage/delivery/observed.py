"""What one batch did, told to the metrics (:mod:`billflow_usage.observability.recorder`):
rows by metric and outcome, delivery latency, permanent failures by code, refused
credentials. Nothing is computed without the ``metrics`` extra."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

from billflow_usage.backends.base import Outcome, Result
from billflow_usage.delivery.claimed import Claim, ClaimedEvent, Outcomes
from billflow_usage.observability import recorder

if TYPE_CHECKING:
    from billflow_usage.delivery.marking import Marked


def observe_events(claim: Claim, outcomes: Outcomes, marked: Marked, *, now: datetime) -> None:
    """Count the rows ``mark`` wrote (rows another claim took over are not counted)."""
    if not recorder.enabled():
        return
    rows = {event.pk: event for event in claim.events}
    results = {event.pk: result for events, result in outcomes for event in events}

    def key(pk: int) -> str:
        return claim.metrics[rows[pk].metric_id].key

    for outcome, pks in (
        ("delivered", marked.delivered),
        ("retry", marked.retried),
        ("failed", marked.failed),
        ("refused", marked.refused),
    ):
        for metric, count in Counter(key(pk) for pk in pks).items():
            recorder.delivery_result(metric, outcome, count)
    _latencies([rows[pk] for pk in marked.delivered], claim, now)
    for code, count in Counter(results[pk].code for pk in marked.failed).items():
        recorder.delivery_failures(code, count)
    if marked.refused:
        recorder.credential_rejections("events", len(marked.refused))


def _latencies(delivered: list[ClaimedEvent], claim: Claim, now: datetime) -> None:
    by_metric: dict[str, list[float]] = {}
    for event in delivered:
        seconds = max(0.0, (now - event.created_at).total_seconds())
        by_metric.setdefault(claim.metrics[event.metric_id].key, []).append(seconds)
    for metric, values in by_metric.items():
        recorder.delivery_latency(metric, values)


def seat_outcome(result: Result) -> str:
    """A seat push's outcome, as counted in ``DeliveryStats`` and the metrics."""
    if result.outcome == Outcome.DELIVERED:
        return "pushed"
    if result.rejects_credentials:
        return "refused"
    return "retry" if result.outcome == Outcome.RETRY else "failed"


def observe_seat(outcome: str) -> None:
    recorder.seat_push(outcome)
    if outcome == "refused":
        recorder.credential_rejections("seats")
