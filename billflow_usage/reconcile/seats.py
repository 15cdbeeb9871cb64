"""Seats: each licensed metric's quantity against its ``track_quantity`` tracker's count and
the item's quantity in Stripe.

A tracker *owns* its metric's quantities: its count is the truth, and a desired quantity that
differs from it was stored around the tracker (a script, an import with tracking disabled, an
edit made before the admin showed ownership). Without a tracker the link's desired quantity is
the truth.

The run counts before it delivers (:func:`count_seats`). With ``apply`` it then recounts what
a tracker owns and the link doesn't want (:func:`recount`), still before delivering, so Stripe
never gets the stray quantity first. It compares after delivering (:func:`compare_seats`): an
item the run pushed is compared with the quantity Stripe confirmed for that push, never with
the one read before it. Pushes still needed are queued by :func:`apply_seats` and delivered by
the caller (the delivery engine keeps Stripe's per-subscription seat update limit), and
:func:`confirm_seats` says which Stripe confirmed. What a link needs is decided in one place,
:func:`decide`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from django.db.models import F
from django.utils import timezone

from billflow_usage.backends.base import RemoteItem
from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.reconcile.report import ErrorEntry, Report, SeatEntry
from billflow_usage.redaction import redact

if TYPE_CHECKING:
    from billflow_usage.tracking.seats import QuantityTracker

CHUNK = 500


class SeatStatus(StrEnum):
    IN_SYNC = "in_sync"
    #: The tracker counts another quantity than the link wants.
    DESIRED_STALE = "desired_stale"
    #: Stripe's item has another quantity than the link wants.
    STRIPE_DIFFERS = "stripe_differs"
    ERROR = "error"


class SeatAction(StrEnum):
    NONE = "none"
    #: Store the tracker's count as the desired quantity (a recount), then push it.
    SET_QUANTITY = "set_quantity"
    #: Push the desired quantity again.
    PUSH = "push"


def decide(
    counted: int | None, desired: int | None, stripe: int | None
) -> tuple[SeatStatus, SeatAction]:
    """What one link needs. ``counted``: the tracker's count (None without a tracker);
    ``desired``: the link's quantity; ``stripe``: the item's (None when unknown)."""
    if counted is not None and counted != desired:
        return SeatStatus.DESIRED_STALE, SeatAction.SET_QUANTITY
    if desired is not None and stripe is not None and desired != stripe:
        return SeatStatus.STRIPE_DIFFERS, SeatAction.PUSH
    return SeatStatus.IN_SYNC, SeatAction.NONE


@dataclass
class Seat:
    """One active link of a licensed metric, as counted before the run delivered."""

    link: SubscriptionItemLink
    tracker: QuantityTracker | None
    #: Stripe was read for the customer this run (else it is what Stripe last confirmed).
    listed: bool
    #: The item's quantity as read this run (None: not read, or no such item).
    read: int | None
    #: ``synced_version`` before the run read Stripe: a higher one later means a push that
    #: Stripe confirmed after that read.
    baseline: int
    counted: int | None = None
    recounted: bool = False
    entry: SeatEntry | None = None


def unpushed_versions(metrics: list[Metric], customers: Collection[str]) -> dict[int, int]:
    """``synced_version`` of the links with a push due, taken before the run reads Stripe."""
    rows = SubscriptionItemLink.objects.filter(
        active=True,
        metric__in=[m for m in metrics if m.kind == Metric.Kind.LICENSED],
        quantity_version__gt=F("synced_version"),
    )
    if customers:
        rows = rows.filter(customer_id__in=list(customers))
    return dict(rows.values_list("pk", "synced_version"))


def count_seats(
    metrics: list[Metric],
    customers: Collection[str],
    live: Mapping[tuple[str, int], RemoteItem],
    listed: Collection[str],
    unpushed: Mapping[int, int],
    report: Report,
) -> list[Seat]:
    """Every active link of the licensed metrics, with its tracker's count."""
    from billflow_usage.tracking import registry

    seats: list[Seat] = []
    ordered = sorted(customers)
    for metric in (m for m in metrics if m.kind == Metric.Kind.LICENSED):
        tracker = registry.quantity_tracker(metric.key)
        for offset in range(0, len(ordered), CHUNK):
            links = SubscriptionItemLink.objects.filter(
                active=True, metric=metric, customer_id__in=ordered[offset : offset + CHUNK]
            ).order_by("customer_id")
            for link in links:
                link.metric = metric
                report.count("seats_checked")
                item = live.get((link.customer_id, metric.pk))
                seat = Seat(
                    link,
                    tracker,
                    listed=link.customer_id in listed,
                    read=item.quantity if item is not None else None,
                    baseline=unpushed.get(link.pk, link.synced_version),
                )
                _count(seat, report)
                seats.append(seat)
    return seats


def recount(seats: list[Seat], report: Report) -> None:
    """Store each owned count its link doesn't want, before the run delivers (``apply``).

    The tracker stores it (counting again under the link's lock, so a concurrent change is
    never overwritten by this older count), which queues the push; when Stripe already has
    the count nothing is pushed.
    """
    for seat in seats:
        if seat.entry is not None or seat.tracker is None:
            continue
        stripe = _stripe_quantity(seat, seat.link)
        if decide(seat.counted, seat.link.quantity, stripe)[1] != SeatAction.SET_QUANTITY:
            continue
        customer = seat.link.customer_id
        try:
            seat.tracker.store(customer)
        except Exception as exc:
            message = f"{type(exc).__name__}: {redact(str(exc))}"
            report.errors.append(
                ErrorEntry("seats", customer, seat.tracker.metric, "tracker", message)
            )
            continue
        seat.recounted = True
        stored = SubscriptionItemLink.objects.get(pk=seat.link.pk)
        seat.counted = stored.quantity
        if stored.quantity == stripe and not stored.quantity_in_sync:
            # Stripe already has the count: only the desired quantity was stray.
            SubscriptionItemLink.objects.filter(
                pk=stored.pk, quantity_version=stored.quantity_version
            ).update(synced_quantity=stripe, synced_version=F("quantity_version"))


def compare_seats(seats: list[Seat], report: Report) -> list[Seat]:
    """After the run delivered: report each link that drifted; returns those."""
    drifting: list[Seat] = []
    current = _reload(seats)
    for seat in seats:
        if seat.entry is not None:  # the tracker failed
            report.seats.append(seat.entry)
            continue
        link = current.get(seat.link.pk, seat.link)
        stripe = _stripe_quantity(seat, link)
        desired = seat.link.quantity
        status, action = decide(seat.counted, desired, stripe)
        if status == SeatStatus.IN_SYNC:
            continue
        seat.entry = SeatEntry(
            link.customer_id,
            seat.link.metric.key,
            link.stripe_subscription_item_id,
            seat.counted,
            desired,
            stripe,
            status,
            action,
        )
        if status == SeatStatus.DESIRED_STALE:
            owner = f"counted by {seat.tracker!r}: {seat.counted}"
            if seat.recounted:
                seat.entry.applied = _confirmed(link, stripe)
                seat.entry.detail = f"{owner}; the link wanted {desired}: recounted"
            else:
                seat.entry.detail = (
                    f"{owner}; the link wants {desired}: the tracker owns this quantity, and "
                    "billflow_sync --apply recounts it"
                )
        else:
            seat.entry.detail = f"Stripe has {stripe}, the link wants {desired}"
        report.seats.append(seat.entry)
        drifting.append(seat)
    return drifting


def apply_seats(drifting: list[Seat]) -> list[int]:
    """Queue the pushes still needed; returns the link IDs to deliver."""
    link_ids: list[int] = []
    for seat in drifting:
        entry = seat.entry
        if entry is None or entry.applied:
            continue
        if entry.action == SeatAction.PUSH:
            # Stripe was changed elsewhere: a new version makes the link due for a push.
            SubscriptionItemLink.objects.filter(pk=seat.link.pk).update(
                quantity_version=F("quantity_version") + 1,
                quantity_changed_at=timezone.now(),
                push_after=None,
            )
            link_ids.append(seat.link.pk)
        elif seat.recounted:
            link_ids.append(seat.link.pk)  # its push may have waited for the rate limit
    return link_ids


def confirm_seats(drifting: list[Seat]) -> None:
    """After delivery: a seat entry is repaired once Stripe confirmed the quantity."""
    state = _reload(drifting)
    for seat in drifting:
        entry, row = seat.entry, state.get(seat.link.pk)
        if entry is None or entry.applied or row is None:
            continue
        if entry.action == SeatAction.SET_QUANTITY and not seat.recounted:
            continue  # a check found it; only --apply recounts
        if _confirmed(row, row.synced_quantity):
            entry.applied = True
            entry.detail += f"; Stripe now has {row.synced_quantity}"
        else:
            reason = row.last_error_code or "waiting for the seat update limit or a worker"
            entry.detail += f"; queued for Stripe ({reason})"


def _count(seat: Seat, report: Report) -> None:
    """Ask the tracker (if any); a failure becomes the seat's error entry."""
    if seat.tracker is None:
        return
    link = seat.link
    try:
        seat.counted = int(seat.tracker.quantity(link.customer_id))
    except Exception as exc:
        message = f"{type(exc).__name__}: {redact(str(exc))}"
        report.errors.append(
            ErrorEntry("seats", link.customer_id, link.metric.key, "tracker", message)
        )
        seat.entry = SeatEntry(
            link.customer_id,
            link.metric.key,
            link.stripe_subscription_item_id,
            None,
            link.quantity,
            _stripe_quantity(seat, link),
            SeatStatus.ERROR,
            detail=message,
        )


def _stripe_quantity(seat: Seat, link: SubscriptionItemLink) -> int | None:
    """The item's quantity in Stripe now: what Stripe confirmed for a push made since the
    read, else what the read found, else (customer not read) what Stripe last confirmed."""
    if not link.stripe_subscription_item_id:
        return None
    if link.synced_version > seat.baseline or not seat.listed:
        return link.synced_quantity
    return seat.read


def _confirmed(link: SubscriptionItemLink, stripe: int | None) -> bool:
    return (
        bool(link.stripe_subscription_item_id)
        and link.quantity_in_sync
        and stripe is not None
        and stripe == link.quantity
    )


def _reload(seats: list[Seat]) -> dict[int, SubscriptionItemLink]:
    ids = [seat.link.pk for seat in seats]
    found: dict[int, SubscriptionItemLink] = {}
    for offset in range(0, len(ids), CHUNK):
        found.update(SubscriptionItemLink.objects.in_bulk(ids[offset : offset + CHUNK]))
    return found
