"""Keeping links and the ledger fresh between ``billflow_sync`` runs, from Stripe's events.

- dj-stripe webhooks: ``customer.subscription.created/updated/deleted`` update the
  subscription item links of that subscription (:func:`sync_subscription`); connected in
  ``AppConfig.ready()`` to dj-stripe's ``WEBHOOK_SIGNALS``, so a project that already
  receives webhooks through dj-stripe needs nothing more.
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
import re
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from billflow_usage.backends.stripe.errors import redact
from billflow_usage.backends.stripe.reads import parse_subscription
from billflow_usage.models import DeliveryGroup, Metric, UsageEvent
from billflow_usage.reconcile.items import LiveItems, match_items, refresh_links
from billflow_usage.reconcile.report import ItemChange, Report

logger = logging.getLogger("billflow_usage")

SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
METER_ERROR_EVENTS = (
    "v1.billing.meter.error_report_triggered",
    "v1.billing.meter.no_meter_found",
)
#: The v1 sender's idempotency keys, ``bfu-me-<identifier>-<attempt>``.
V1_KEY_RE = re.compile(r"^bfu-me-(?P<identifier>.+)-\d+$")


def sync_subscription(data: Mapping[str, Any]) -> list[ItemChange]:
    """Update the links of one subscription (a webhook's ``data.object``); returns the
    changes. A canceled subscription deactivates its links."""
    sub = parse_subscription(data)
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
    """Mark the ledger rows a meter error event names as failed, with Stripe's code and
    message; returns how many rows changed. Other event types are ignored (0)."""
    if event.get("type") not in METER_ERROR_EVENTS:
        return 0
    data = event.get("data") or {}
    reason = data.get("reason") or {}
    errors: dict[str, tuple[str, str]] = {}
    for error_type in reason.get("error_types") or ():
        code = str(error_type.get("code") or event["type"].rsplit(".", 1)[-1])
        for sample in error_type.get("sample_errors") or ():
            request = sample.get("request") or {}
            identifier = _identifier(str(request.get("identifier") or ""))
            if identifier:
                message = str(
                    sample.get("error_message") or data.get("developer_message_summary") or ""
                )
                errors[identifier] = (code, redact(f"Stripe error report: {message}"))
    if not errors:
        return 0
    changed = 0
    with transaction.atomic():
        groups = dict(
            DeliveryGroup.objects.filter(identifier__in=list(errors)).values_list(
                "pk", "identifier"
            )
        )
        for identifier, (code, message) in errors.items():
            rows = UsageEvent.objects.filter(
                status__in=[UsageEvent.Status.SENT, UsageEvent.Status.PENDING]
            )
            group_ids = [pk for pk, ident in groups.items() if ident == identifier]
            if group_ids:
                rows = rows.filter(group_id__in=group_ids)
                DeliveryGroup.objects.filter(pk__in=group_ids).update(
                    status=DeliveryGroup.Status.FAILED
                )
            else:
                rows = rows.filter(identifier=identifier)
            changed += rows.update(
                status=UsageEvent.Status.FAILED,
                last_error_code=code[:100],
                last_error_message=message,
                claimed_until=None,
                claim_token=None,
            )
    if changed:
        logger.warning("billflow_usage: %d event(s) marked failed by a meter error report", changed)
    return changed


def _identifier(value: str) -> str:
    """The meter event identifier in a sample (Stripe may give the request's idempotency key)."""
    found = V1_KEY_RE.match(value)
    return found.group("identifier") if found else value
