"""Cancelling a meter event Stripe already received: one code path for billflow_sync and the
admin.

Stripe cancels an event only within 24 hours of receiving it, by the identifier it was sent
under: a row's own identifier, or its delivery group's for rows aggregated into one Stripe
event (such rows can only be cancelled together). The ledger marks rows cancelled only after
Stripe confirmed the cancellation.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from billflow_usage.backends.base import BaseBackend, Cancellation, Outcome, Result
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.redaction import redact

#: Stripe cancels events only within 24 hours of receiving them; keep clear of the edge.
CANCEL_WINDOW = timedelta(hours=24) - timedelta(minutes=15)


def cancellable_since(now: datetime) -> datetime:
    """Events Stripe received (``sent_at``) at or after this moment can still be cancelled."""
    return now - CANCEL_WINDOW


def cancel_in_stripe(
    metric: Metric,
    identifier: str,
    rows: Sequence[UsageEvent],
    backend: BaseBackend,
    *,
    code: str,
    message: str,
) -> Result:
    """Cancel the Stripe event ``identifier`` and, once Stripe confirms, mark ``rows``
    cancelled with ``code`` and ``message``.

    ``rows`` are the ledger rows that event carried: one, or a whole delivery group. A backend
    that can't cancel (``NotImplementedError``) answers a failed :class:`Result`.
    """
    try:
        result = backend.cancel_meter_event(Cancellation(metric.meter_event_name, identifier))
    except NotImplementedError as exc:
        return Result(
            identifier,
            Outcome.FAILED,
            "unsupported",
            redact(str(exc)) or f"{type(backend).__name__} cannot cancel meter events.",
        )
    if result.outcome == Outcome.DELIVERED:
        UsageEvent.objects.filter(
            pk__in=[row.pk for row in rows],
            status__in=[UsageEvent.Status.SENT, UsageEvent.Status.FAILED],
        ).cancel(last_error_code=code, last_error_message=message)
    return result
