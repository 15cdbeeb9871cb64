"""Pushing desired seat quantities to Stripe's subscription items.

A link is due when its ``quantity_version`` is ahead of ``synced_version``, its item ID is
known and its ``push_after`` (lease or backoff) has passed. Changes made before a push are
coalesced (the push carries the latest quantity), and a subscription gets at most
``SEAT_UPDATES_PER_HOUR`` pushes an hour: a link waits ``3600 / SEAT_UPDATES_PER_HOUR``
seconds after the last confirmed push of any item of its subscription (``synced_at``).

Quantities are absolute, so a retry is always safe, but their order matters: an older
quantity landing after a newer one leaves Stripe wrong. So, as for usage events (see
:mod:`~billflow_usage.delivery.claim`), a claim stamps its links with a lease (in
``push_after``) and a random ``claim_token``, and every later write (mark, release) happens
only where the token still holds. A worker starts a push only while enough of its lease is
left for the request to end (:data:`PUSH_MARGIN`), then gives the rest back; right before
each push it reads the link again under its claim and pushes the latest quantity, or nothing
when another worker took the link or Stripe already has it. A push that lands anyway after
a newer confirmed one (clocks far apart) is noticed when marked: the link is made due again.

Seat pushes never give up: after a permanent error they are tried again every
``RETRY_MAX_DELAY`` with the error on the link.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from billflow_usage.backends.base import BaseBackend, Outcome, QuantityPush, Result
from billflow_usage.conf import billflow_settings
from billflow_usage.delivery.claim import lock_skipping, serialise_claims
from billflow_usage.delivery.observed import observe_seat, seat_outcome
from billflow_usage.delivery.retry import backoff
from billflow_usage.delivery.stats import DeliveryStats
from billflow_usage.models import Metric, SubscriptionItemLink

logger = logging.getLogger("billflow_usage")

#: Seconds of its lease a worker keeps in hand: it starts no push with less left, so the
#: push has ended (the Stripe backend's requests time out after 30 s) before another worker
#: may claim the link. Half the lease when ``CLAIM_LEASE`` is shorter than twice this.
PUSH_MARGIN = 60.0


@dataclass(frozen=True)
class ClaimedLink:
    """What is pushed: the quantity as of ``version``, read under the claim ``token``."""

    link: SubscriptionItemLink
    version: int
    quantity: int
    push: QuantityPush
    token: uuid.UUID


@dataclass
class SeatClaim:
    """The links one worker holds, the token that proves it, and when its lease ends."""

    token: uuid.UUID
    until: datetime
    links: list[ClaimedLink] = field(default_factory=list)

    @property
    def last_push_start(self) -> datetime:
        """After this no push starts: what is left of the lease is kept for the request."""
        margin = min(PUSH_MARGIN, billflow_settings.CLAIM_LEASE / 2)
        return self.until - timedelta(seconds=margin)


def push_due_seats(
    backend: BaseBackend,
    *,
    using: str,
    limit: int,
    deadline: float | None = None,
    link_ids: Collection[int] | None = None,
) -> DeliveryStats:
    """Claim due links, push each latest quantity, record what Stripe confirmed."""
    stats = DeliveryStats()
    claim = claim_links(using=using, now=timezone.now(), limit=limit, link_ids=link_ids)
    stats.seats_claimed = len(claim.links)
    for index, claimed in enumerate(claim.links):
        out_of_time = deadline is not None and time.monotonic() >= deadline
        if out_of_time or timezone.now() >= claim.last_push_start:
            release_links(claim.links[index:], using=using)
            break
        item = reread(claimed, using=using)
        if item is None:
            continue
        result = _push(backend, item.push)
        mark_link(item, result, using=using)
        outcome = seat_outcome(result)
        stats.count_seat(outcome)
        observe_seat(outcome)
    return stats


def claim_links(
    *, using: str, now: datetime, limit: int, link_ids: Collection[int] | None = None
) -> SeatClaim:
    """Claim due links, at most one per subscription, and commit the claim.

    The stamp is conditional (still due), and the links are read back by token, so a claim
    holds exactly what it stamped even without row locks (SQLite).
    """
    claim = SeatClaim(uuid.uuid4(), now + timedelta(seconds=billflow_settings.CLAIM_LEASE))
    links = SubscriptionItemLink.objects.using(using)
    with transaction.atomic(using=using):
        serialise_claims(using)
        due = links.filter(_due(now, using))
        if link_ids is not None:
            due = due.filter(pk__in=list(link_ids))
        candidates = lock_skipping(due, using).order_by("quantity_changed_at", "pk")[:limit]
        chosen: dict[str, int] = {}
        for link in candidates.only("pk", "stripe_subscription_id"):
            chosen.setdefault(link.stripe_subscription_id or f"link:{link.pk}", link.pk)
        if not chosen:
            return claim
        due.filter(pk__in=list(chosen.values())).update(
            push_after=claim.until, claim_token=claim.token
        )
    stamped = links.filter(pk__in=list(chosen.values()), claim_token=claim.token)
    held = list(stamped.order_by("quantity_changed_at", "pk"))
    metrics = Metric.objects.using(using).in_bulk({link.metric_id for link in held})
    claim.links = [
        _claimed(link, _proration(metrics[link.metric_id]), claim.token) for link in held
    ]
    return claim


def reread(item: ClaimedLink, *, using: str) -> ClaimedLink | None:
    """The link as it is now, right before its push, while the claim still holds it: with
    the latest quantity; None (and given back) when there is nothing left to push."""
    link = _held(item, using).first()
    if link is None:
        return None  # another worker took it over after this claim's lease ran out
    if not (link.active and link.stripe_subscription_item_id and link.quantity is not None):
        release_links([item], using=using)
        return None
    if link.synced_version >= link.quantity_version:
        release_links([item], using=using)  # Stripe already has it
        return None
    return _claimed(link, item.push.proration_behavior, item.token)


def release_links(items: Collection[ClaimedLink], *, using: str) -> int:
    """Give unpushed links back (due at once) without counting an attempt."""
    if not items:
        return 0
    token = next(iter(items)).token
    return (
        SubscriptionItemLink.objects.using(using)
        .filter(pk__in=[item.link.pk for item in items], claim_token=token)
        .update(push_after=None, claim_token=None)
    )


def mark_link(item: ClaimedLink, result: Result, *, using: str) -> None:
    """Record one push's result where the claim still holds the link.

    A confirmed quantity never replaces a newer confirmation. Should a newer one have been
    confirmed before this push landed, Stripe may now hold this older quantity: the link is
    made due again (see :func:`_push_again_if_overtaken`).
    """
    now = timezone.now()
    link = item.link
    rows = _held(item, using)
    if result.outcome == Outcome.DELIVERED:
        confirmed = rows.filter(synced_version__lte=item.version).update(
            synced_quantity=item.quantity,
            synced_version=item.version,
            synced_at=now,
            push_after=None,
            claim_token=None,
            push_attempts=0,
            last_error_code="",
            last_error_message="",
        )
        if not confirmed:
            rows.update(push_after=None, claim_token=None)
            _push_again_if_overtaken(item, now, using)
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
        claim_token=None,
        push_attempts=F("push_attempts") + 1,
        last_error_code=result.code[:100],
        last_error_message=result.message,
    )


def _push_again_if_overtaken(item: ClaimedLink, now: datetime, using: str) -> None:
    """A delivered push that could not be confirmed: a newer version was confirmed first (or
    the claim was lost), so this older quantity may have landed after it. Where the link
    counts as in sync with another quantity than this push's, a new version makes it due."""
    overtaken = (
        SubscriptionItemLink.objects.using(using)
        .filter(pk=item.link.pk, synced_version=F("quantity_version"))
        .exclude(quantity=item.quantity)
        .update(quantity_version=F("quantity_version") + 1, quantity_changed_at=now)
    )
    if overtaken:
        logger.warning(
            "Seat quantity %s for %s (version %s) reached Stripe after a newer one was "
            "confirmed; the desired quantity will be pushed again",
            item.quantity,
            item.link.stripe_subscription_item_id,
            item.version,
        )


def _held(item: ClaimedLink, using: str) -> QuerySet[SubscriptionItemLink]:
    """The link, where the claim still holds it."""
    return SubscriptionItemLink.objects.using(using).filter(pk=item.link.pk, claim_token=item.token)


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


def _proration(metric: Metric) -> str:
    return metric.proration_behavior or billflow_settings.DEFAULT_PRORATION_BEHAVIOR


def _claimed(link: SubscriptionItemLink, proration: str, token: uuid.UUID) -> ClaimedLink:
    quantity = link.quantity or 0  # never None here: claims and pushes require a quantity
    item_id = link.stripe_subscription_item_id
    key = f"bfu-qty-{item_id}-v{link.quantity_version}-a{link.push_attempts}"
    return ClaimedLink(
        link=link,
        version=link.quantity_version,
        quantity=quantity,
        push=QuantityPush(item_id, quantity, proration, key),
        token=token,
    )


def _push(backend: BaseBackend, push: QuantityPush) -> Result:
    try:
        return backend.push_quantity(push)
    except Exception as exc:
        logger.exception("%s failed to push a quantity", type(backend).__name__)
        message = f"{type(backend).__name__} raised {type(exc).__name__}; see the logs."
        return Result(push.subscription_item_id, Outcome.RETRY, "backend_error", message)
