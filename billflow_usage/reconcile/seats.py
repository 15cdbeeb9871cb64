"""Seats: each licensed metric's quantity recomputed from its ``track_quantity`` tracker (the
source of truth), against the link's desired ``quantity`` and the item's quantity in Stripe.

``apply`` stores a recomputed quantity with ``set_quantity`` and makes a link whose desired
quantity differs from Stripe's due for a push; the caller then delivers those links (the
delivery engine keeps Stripe's per-subscription seat update limit).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import F
from django.utils import timezone

from billflow_usage.backends.base import RemoteItem
from billflow_usage.backends.stripe.errors import redact
from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.reconcile.report import ErrorEntry, Report, SeatEntry

CHUNK = 500


def compare_seats(
    metrics: list[Metric],
    customers: set[str],
    live: Mapping[tuple[str, int], RemoteItem],
    listed: set[str],
    report: Report,
) -> list[tuple[SubscriptionItemLink, SeatEntry]]:
    """Compare every active link of the licensed metrics; returns the drifting ones."""
    from billflow_usage.tracking import registry

    drifting: list[tuple[SubscriptionItemLink, SeatEntry]] = []
    licensed = [m for m in metrics if m.kind == Metric.Kind.LICENSED]
    ordered = sorted(customers)
    for metric in licensed:
        tracker = registry.quantity_tracker(metric.key)
        for offset in range(0, len(ordered), CHUNK):
            links = SubscriptionItemLink.objects.filter(
                active=True, metric=metric, customer_id__in=ordered[offset : offset + CHUNK]
            ).order_by("customer_id")
            for link in links:
                entry = _compare(link, metric, tracker, live, listed, report)
                if entry is not None:
                    report.seats.append(entry)
                    if entry.is_drift:
                        drifting.append((link, entry))
    return drifting


def apply_seats(drifting: list[tuple[SubscriptionItemLink, SeatEntry]]) -> list[int]:
    """Store recomputed quantities and queue pushes; returns the link IDs to deliver."""
    from billflow_usage.ledger import set_quantity

    link_ids: list[int] = []
    for link, entry in drifting:
        if entry.action == "set_quantity" and entry.recomputed is not None:
            stored = set_quantity(link.metric, link.customer_id, entry.recomputed)
            link_ids.append(stored.pk)
            if entry.stripe is not None and entry.stripe == entry.recomputed:
                # Stripe already has it: only the desired quantity was stale.
                SubscriptionItemLink.objects.filter(pk=stored.pk).update(
                    synced_quantity=entry.recomputed, synced_version=F("quantity_version")
                )
                entry.applied = True
        elif entry.action == "push":
            # Stripe was changed elsewhere: a new version makes the link due for a push.
            SubscriptionItemLink.objects.filter(pk=link.pk).update(
                quantity_version=F("quantity_version") + 1,
                quantity_changed_at=timezone.now(),
                push_after=None,
            )
            link_ids.append(link.pk)
    return link_ids


def confirm_seats(drifting: list[tuple[SubscriptionItemLink, SeatEntry]]) -> None:
    """After delivery: a seat entry is repaired once Stripe confirmed the quantity."""
    state = SubscriptionItemLink.objects.in_bulk([link.pk for link, _ in drifting])
    for link, entry in drifting:
        if entry.applied:
            continue
        row = state.get(link.pk)
        if row is not None and row.quantity_in_sync and row.stripe_subscription_item_id:
            entry.applied = True
            entry.detail = f"Stripe now has {row.synced_quantity}"
        elif row is not None:
            reason = row.last_error_code or "waiting for the seat update limit or a worker"
            entry.detail = f"quantity stored and queued for Stripe ({reason})"


def _compare(
    link: SubscriptionItemLink,
    metric: Metric,
    tracker: object,
    live: Mapping[tuple[str, int], RemoteItem],
    listed: set[str],
    report: Report,
) -> SeatEntry | None:
    key = (link.customer_id, metric.pk)
    stripe_quantity: int | None
    if link.customer_id in listed:
        item = live.get(key)
        stripe_quantity = item.quantity if item is not None else None
    else:
        stripe_quantity = link.synced_quantity
    recomputed: int | None = None
    report.count("seats_checked")
    if tracker is not None:
        try:
            recomputed = int(tracker.quantity(link.customer_id))  # type: ignore[attr-defined]
        except Exception as exc:
            message = f"{type(exc).__name__}: {redact(str(exc))}"
            report.errors.append(
                ErrorEntry("seats", link.customer_id, metric.key, "tracker", message)
            )
            return SeatEntry(
                link.customer_id,
                metric.key,
                link.stripe_subscription_item_id,
                None,
                link.quantity,
                stripe_quantity,
                "error",
                detail=message,
            )
    entry = SeatEntry(
        link.customer_id,
        metric.key,
        link.stripe_subscription_item_id,
        recomputed,
        link.quantity,
        stripe_quantity,
        status="in_sync",
    )
    if recomputed is not None and recomputed != link.quantity:
        entry.status, entry.action = "desired_stale", "set_quantity"
        entry.detail = f"the tracker counts {recomputed}, the link wants {link.quantity}"
        return entry
    wanted = link.quantity
    if (
        wanted is not None
        and stripe_quantity is not None
        and link.stripe_subscription_item_id
        and wanted != stripe_quantity
    ):
        entry.status, entry.action = "stripe_differs", "push"
        entry.detail = f"Stripe has {stripe_quantity}, the link wants {wanted}"
        return entry
    return None
