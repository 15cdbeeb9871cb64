"""Keeping links and the ledger fresh between ``billflow_sync`` runs, from Stripe's events.

- dj-stripe webhooks: ``customer.subscription.created/updated/deleted`` update the
  subscription item links of that subscription (:func:`sync_subscription`); connected in
  ``AppConfig.ready()`` to dj-stripe's ``WEBHOOK_SIGNALS``, so a project that already
  receives webhooks through dj-stripe needs nothing more. The payload is read by the
  configured backend (:meth:`~billflow_usage.backends.base.BaseBackend.parse_subscription`);
  with one that has no Stripe subscriptions (locmem, console) there are none to follow.
- Meter error reports (``v1.billing.meter.error_report_triggered`` and
  ``v1.billing.meter.no_meter_found`` thin events from an Event Destination):
  :func:`mark_meter_errors` marks the events Stripe names as failed with Stripe's code.
  Point the Event Destination at :func:`billflow_usage.views.meter_error_webhook`, or call
  :func:`mark_meter_errors` with the fetched event from your own handler.

Stripe's error reports carry *samples* of the failing requests, so only the events they name
can be marked; ``billflow_sync`` finds the rest as drift.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import IntegrityError, router, transaction
from django.db.models import Q
from django.utils import timezone

from billflow_usage.backends import get_backend_class
from billflow_usage.backends.base import ReadNotSupported
from billflow_usage.meter_errors import METER_ERROR_EVENTS, ErrorReport, parse_report
from billflow_usage.models import DeliveryGroup, Metric, ProcessedMeterErrorEvent, UsageEvent
from billflow_usage.reconcile.items import LiveItems, match_items, refresh_links
from billflow_usage.reconcile.report import ItemChange, Report

logger = logging.getLogger("billflow_usage")

SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
#: Processed events forgotten at most per event recorded: pruning stays cheap, and keeps up.
PRUNE_BATCH = 100


def sync_subscription(data: Mapping[str, Any]) -> list[ItemChange]:
    """Update the links of one subscription (a webhook's ``data.object``); returns the
    changes. A canceled subscription deactivates its links. Raises
    :class:`~billflow_usage.backends.base.ReadNotSupported` when the configured backend
    can't read it."""
    sub = get_backend_class().parse_subscription(data)
    if not sub.id or not sub.customer_id:
        return []
    metrics = list(Metric.objects.filter(active=True))
    meter_ids = {m.pk: m.stripe_meter_id for m in metrics if m.stripe_meter_id}
    live = LiveItems(
        listed={sub.customer_id},
        items=match_items({sub.customer_id: [sub] if sub.live else []}, metrics, meter_ids),
    )
    report = Report(mode="webhook", started_at=timezone.now(), options={})
    refresh_links(live, metrics, report, write=True, only_subscription=sub.id)
    return report.items


def subscription_receiver(sender: Any, event: Any, **kwargs: Any) -> None:
    """dj-stripe signal receiver; never breaks dj-stripe's own processing."""
    data = (getattr(event, "data", None) or {}).get("object") or {}
    if data.get("object") != "subscription":
        return
    try:
        changes = sync_subscription(data)
    except ReadNotSupported as exc:
        logger.info("billflow_usage: links not updated from %s: %s", event, exc)
        return
    except Exception:
        logger.exception("billflow_usage: could not update links from %s", event)
        return
    for change in changes:
        logger.info(
            "billflow_usage: %s link %s for %s (%s)",
            change.action,
            change.subscription_item_id or change.previous_item_id,
            change.customer_id,
            change.metric,
        )


def connect_djstripe() -> None:
    """Connect :func:`subscription_receiver` to dj-stripe's webhook signals."""
    from djstripe.signals import WEBHOOK_SIGNALS

    for name in SUBSCRIPTION_EVENTS:
        signal = WEBHOOK_SIGNALS.get(name)
        if signal is not None:
            signal.connect(subscription_receiver, weak=False, dispatch_uid=f"billflow_usage:{name}")


def mark_meter_errors(event: Mapping[str, Any]) -> int:
    """Mark the ledger rows a fetched meter error event names as failed, with Stripe's code
    and message; returns how many rows changed. Other event types are ignored (0).

    Raises :class:`~billflow_usage.exceptions.MalformedEvent` when the event is not shaped
    like Stripe's. Calling it twice with one event is harmless (rows sent again since the
    event was created are left alone), but the view also records the event so a replay
    costs nothing: prefer :func:`apply_once` in a handler of your own.
    """
    if event.get("type") not in METER_ERROR_EVENTS:
        return 0
    report = parse_report(event)
    using = router.db_for_write(UsageEvent)
    with transaction.atomic(using=using):
        return _mark(report, using)


def already_applied(event_id: str) -> bool:
    """Whether the event was applied already (one indexed SELECT)."""
    return ProcessedMeterErrorEvent.objects.filter(event_id=event_id).exists()


def apply_once(report: ErrorReport) -> int | None:
    """Record the event and mark its rows in one transaction; returns how many rows were
    marked, or None when the event was already recorded (a concurrent delivery of it won:
    the unique event ID decides, and nothing is marked twice)."""
    using = router.db_for_write(UsageEvent)
    notice = report.event
    with transaction.atomic(using=using):
        try:
            with transaction.atomic(using=using):
                ProcessedMeterErrorEvent.objects.using(using).create(
                    event_id=notice.id, event_type=notice.type, created_at=notice.created
                )
        except IntegrityError:
            return None
        marked = _mark(report, using)
        _prune(using)
    return marked


def _mark(report: ErrorReport, using: str) -> int:
    """Fail the named rows Stripe's refusal still applies to (see :func:`_still_refused`);
    inside the caller's transaction."""
    if not report.errors:
        return 0
    by_error: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
    for identifier, error in report.errors.items():
        by_error[error].append(identifier)
    created = report.event.created
    rows = UsageEvent.objects.using(using)
    changed = 0
    for (code, message), identifiers in by_error.items():
        changed += rows.filter(_named(identifiers, using), _still_refused(created)).update(
            status=UsageEvent.Status.FAILED, last_error_code=code, last_error_message=message
        )
    named = list(report.errors)
    live = [UsageEvent.Status.SENT, UsageEvent.Status.PENDING]
    # A group is failed once none of its rows is sent or pending any more.
    DeliveryGroup.objects.using(using).filter(identifier__in=named).exclude(
        events__status__in=live
    ).update(status=DeliveryGroup.Status.FAILED)
    left = rows.filter(_named(named, using), status__in=live).count()
    if changed:
        logger.warning(
            "billflow_usage: %d event(s) marked failed by meter error report %s",
            changed,
            report.event.id,
        )
    if left:
        logger.info(
            "billflow_usage: %d event(s) named by meter error report %s were left alone: sent "
            "again or being retried since it was created",
            left,
            report.event.id,
        )
    return changed


def _named(identifiers: list[str], using: str) -> Q:
    """Rows Stripe knows by one of ``identifiers``: their own, or their delivery group's.

    The groups are looked up first (their identifier's unique index), so the rows are two
    index lookups the database ORs together (the identifier's unique index, the group's): an
    OR across the join to the groups can use neither, and scans the whole ledger.
    """
    groups = DeliveryGroup.objects.using(using).filter(identifier__in=identifiers)
    own = Q(group__isnull=True, identifier__in=identifiers)
    return own | Q(group_id__in=list(groups.values_list("pk", flat=True)))


def _still_refused(created: datetime) -> Q:
    """Rows whose last attempt is the one Stripe refused in an event created at ``created``.

    A row sent at or after ``created`` was sent again and taken since (failing it would let
    a Retry bill it twice once Stripe's 24 h of identifier deduplication are over). A pending
    row is failed only when nothing happened to it since: no claim holds it (a worker's
    answer decides) and its retry was due by then (a later one may have been taken, its
    answer lost; it decides, and a new report names it if Stripe refuses it again).
    """
    return Q(status=UsageEvent.Status.SENT, sent_at__lt=created) | Q(
        status=UsageEvent.Status.PENDING, claim_token__isnull=True, next_attempt_at__lte=created
    )


def _prune(using: str) -> None:
    """Forget a bounded number of events older than the retention, in one DELETE."""
    model = ProcessedMeterErrorEvent
    cutoff = timezone.now() - model.RETENTION
    stale = model.objects.using(using).filter(received_at__lt=cutoff).order_by("pk")
    model.objects.using(using).filter(pk__in=stale.values("pk")[:PRUNE_BATCH]).delete()
