"""Pushing desired seat quantities to Stripe's subscription items.

A link is due when its ``quantity_version`` is ahead of ``synced_version``, its item ID is
known and its ``push_after`` (lease or backoff) has passed. Changes made before a push are
coalesced (the push carries the latest quantity), and a subscription gets at most
``SEAT_UPDATES_PER_HOUR`` pushes an hour: a link waits ``3600 / SEAT_UPDATES_PER_HOUR``
seconds after the last confirmed push of any item of its subscription (``synced_at``).

Quantities are absolute, so a retry is always safe and seat pushes never give up: after a
permanent error they are tried again every ``RETRY_MAX_DELAY`` with the error on the link.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from billflow_usage.backends.base import BaseBackend, Outcome, QuantityPush, Result
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery.claim import lock_skipping, serialise_claims
from billflow_usage.delivery.retry import backoff
from billflow_usage.delivery.stats import DeliveryStats
from billflow_usage.models import Metric, SubscriptionItemLink

logger = logging.getLogger("billflow_usage")


@dataclass(frozen=True)
class ClaimedLink:
    """What is pushed: the quantity as of ``version``, read when the link was claimed."""

    link: SubscriptionItemLink
    version: int
    quantity: int
    push: QuantityPush


def push_due_seats(
    backend: BaseBackend,
    *,
    using: str,
    limit: int,
    deadline: float | None = None,
    link_ids: Collection[int] | None = None,
) -> DeliveryStats:
    """Claim due links, push each quantity, record what Stripe confirmed."""
    stats = DeliveryStats()
    claimed = claim_links(using=using, now=timezone.now(), limit=limit, link_ids=link_ids)
    stats.seats_claimed = len(claimed)
    for index, item in enumerate(claimed):
        if deadline is not None and time.monotonic() >= deadline:
            ids = [c.link.pk for c in claimed[index:]]
            SubscriptionItemLink.objects.using(using).filter(pk__in=ids).update(push_after=None)
            break
        result = _push(backend, item.push)
        mark_link(item, result, using=using)
        if result.outcome == Outcome.DELIVERED:
            stats.seats_pushed += 1
        elif result.rejects_credentials:
            stats.seats_refused += 1
        elif result.outcome == Outcome.RETRY:
            stats.seats_retried += 1
        else:
            stats.seats_failed += 1
    return stats


def claim_links(
    *, using: str, now: datetime, limit: int, link_ids: Collection[int] | None = None
) -> list[ClaimedLink]:
    """Claim due links, at most one per subscription, by setting a lease in ``push_after``."""
    lease = now + timedelta(seconds=billflow_settings.CLAIM_LEASE)
    links = SubscriptionItemLink.objects.using(using)
    with transaction.atomic(using=using):
        serialise_claims(using)
        due = links.filter(_due(now, using))
        if link_ids is not None:
            due = due.filter(pk__in=list(link_ids))
        candidates = lock_skipping(due, using).order_by("quantity_changed_at", "pk")[:limit]
        chosen: dict[str, SubscriptionItemLink] = {}
        for link in candidates:
            chosen.setdefault(link.stripe_subscription_id or f"link:{link.pk}", link)
        if chosen:
            links.filter(pk__in=[link.pk for link in chosen.values()]).update(push_after=lease)
    metrics = Metric.objects.using(using).in_bulk({link.metric_id for link in chosen.values()})
    return [_claimed(link, metrics[link.metric_id]) for link in chosen.values()]


def mark_link(item: ClaimedLink, result: Result, *, using: str) -> None:
    """Record one push's result; a confirmed quantity never replaces a newer one."""
    now = timezone.now()
    link = item.link
    rows = SubscriptionItemLink.objects.using(using).filter(pk=link.pk)
    if result.outcome == Outcome.DELIVERED:
        rows.filter(synced_version__lte=item.version).update(
            synced_quantity=item.quantity,
            synced_version=item.version,
            synced_at=now,
            push_after=None,
            push_attempts=0,
            last_error_code="",
            last_error_message="",
        )
        rows.filter(synced_version__gt=item.version).update(push_after=None)
        return
    if result.outcome == Outcome.RETRY:
        delay = backoff(
            link.push_attempts + 1,
            base=billflow_settings.RETRY_BASE_DELAY,
            cap=billflow_settings.RETRY_MAX_DELAY,
            retry_after=result.retry_after,
        )
    else:
        delay = timedelta(seconds=billflow_settings.RETRY_MAX_DELAY)
        logger.warning(
            "Seat quantity %s for %s failed (%s): %s; trying again in %s",
            item.quantity,
            link.stripe_subscription_item_id,
            result.code,
            result.message,
            delay,
        )
    rows.update(
        push_after=now + delay,
        push_attempts=F("push_attempts") + 1,
        last_error_code=result.code[:100],
        last_error_message=result.message,
    )


def _due(now: datetime, using: str) -> Q:
    spacing = timedelta(seconds=3600 / billflow_settings.SEAT_UPDATES_PER_HOUR)
    recently_pushed = now - spacing
    licensed = Metric.objects.using(using).filter(kind=Metric.Kind.LICENSED)
    sibling_pushed = SubscriptionItemLink.objects.using(using).filter(
        active=True,
        stripe_subscription_id=OuterRef("stripe_subscription_id"),
        synced_at__gt=recently_pushed,
    )
    return (
        Q(
            active=True,
            metric_id__in=licensed.values("pk"),
            quantity__isnull=False,
            quantity_version__gt=F("synced_version"),
        )
        & ~Q(stripe_subscription_item_id="")
        & (Q(push_after__isnull=True) | Q(push_after__lte=now))
        & (Q(synced_at__isnull=True) | Q(synced_at__lte=recently_pushed))
        & (Q(stripe_subscription_id="") | ~Q(Exists(sibling_pushed)))
    )


def _claimed(link: SubscriptionItemLink, metric: Metric) -> ClaimedLink:
    quantity = link.quantity or 0  # never None here: the due filter requires a quantity
    proration = metric.proration_behavior or billflow_settings.DEFAULT_PRORATION_BEHAVIOR
    item_id = link.stripe_subscription_item_id
    key = f"bfu-qty-{item_id}-v{link.quantity_version}-a{link.push_attempts}"
    return ClaimedLink(
        link=link,
        version=link.quantity_version,
        quantity=quantity,
        push=QuantityPush(item_id, quantity, proration, key),
    )


def _push(backend: BaseBackend, push: QuantityPush) -> Result:
    try:
        return backend.push_quantity(push)
    except Exception as exc:
        logger.exception("%s failed to push a quantity", type(backend).__name__)
        message = f"{type(backend).__name__} raised {type(exc).__name__}; see the logs."
        return Result(push.subscription_item_id, Outcome.RETRY, "backend_error", message)
