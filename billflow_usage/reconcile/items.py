"""Refreshing ``SubscriptionItemLink``s from Stripe (or dj-stripe's synced subscriptions).

For each customer and metric the live subscription item is the one whose price is the
metric's ``stripe_price_id``, or (metered metrics) whose metered price's meter is the
metric's meter. New items get a link (keeping a desired quantity already stored), links whose
item or subscription is gone or canceled are deactivated, and each link keeps its item's
current billing period.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billflow_usage.backends.base import (
    BaseBackend,
    ReadNotSupported,
    RemoteItem,
    RemoteSubscription,
)
from billflow_usage.conf import billflow_settings
from billflow_usage.models import Metric, SubscriptionItemLink
from billflow_usage.reconcile.report import ErrorEntry, ItemChange, Report
from billflow_usage.redaction import redact

#: Below this many customers to ask Stripe about, list each one's subscriptions; above it
#: list all subscriptions page by page (100 a request), which is cheaper.
PER_CUSTOMER_LIMIT = 25
CHUNK = 500

Key = tuple[str, int]  # (customer_id, metric pk)


@dataclass
class LiveItems:
    """What Stripe (or dj-stripe) says each listed customer has."""

    #: Customers whose subscriptions were read; only their links are changed.
    listed: set[str] = field(default_factory=set)
    #: (customer, metric pk) -> (subscription, item) for every live matching item.
    items: dict[Key, tuple[RemoteSubscription, RemoteItem]] = field(default_factory=dict)


def read_subscriptions(
    customers: Collection[str],
    backend: BaseBackend,
    report: Report,
    *,
    explicit: bool,
    items_from: str,
    now: datetime,
) -> tuple[dict[str, list[RemoteSubscription]], set[str]]:
    """The live subscriptions of ``customers`` (plus, when listing every subscription, of
    other customers), and which customers were read successfully."""
    by_customer: dict[str, list[RemoteSubscription]] = defaultdict(list)
    listed: set[str] = set()
    remaining = set(customers)
    if items_from in ("auto", "djstripe"):
        try:
            fresh = _from_djstripe(
                remaining, by_customer, now, backend=backend, any_age=items_from == "djstripe"
            )
        except ReadNotSupported as exc:
            if items_from == "djstripe":  # nothing read: no link may change
                report.errors.append(ErrorEntry("items", "", "", "unsupported", str(exc)))
                return by_customer, listed
            fresh = set()  # the backend lists them itself, or says it can't
        listed |= fresh
        remaining -= fresh
        if items_from == "djstripe":
            listed |= remaining  # dj-stripe is the source: no rows means no subscriptions
            return by_customer, listed
    if not remaining and (explicit or listed):
        return by_customer, listed
    try:
        if explicit or (len(remaining) <= PER_CUSTOMER_LIMIT and listed):
            listed |= _list_each(remaining, backend, report, by_customer)
        else:
            listed |= _list_all(remaining, backend, by_customer, served=set(listed))
    except ReadNotSupported as exc:
        report.errors.append(ErrorEntry("items", "", "", "unsupported", str(exc)))
    except Exception as exc:
        report.errors.append(ErrorEntry("items", "", "", type(exc).__name__, redact(str(exc))))
    return by_customer, listed


def _list_each(
    customers: Collection[str],
    backend: BaseBackend,
    report: Report,
    by_customer: dict[str, list[RemoteSubscription]],
) -> set[str]:
    """One listing per customer (cheaper for a few); a customer Stripe can't list is reported
    and left out. Returns the customers read."""
    read: set[str] = set()
    for customer in sorted(customers):
        try:
            subs = list(backend.list_subscriptions(customer))
        except ReadNotSupported:
            raise
        except Exception as exc:
            report.errors.append(
                ErrorEntry("items", customer, "", type(exc).__name__, redact(str(exc)))
            )
            continue
        by_customer[customer] = [s for s in subs if s.live]
        read.add(customer)
    return read


def _list_all(
    customers: Collection[str],
    backend: BaseBackend,
    by_customer: dict[str, list[RemoteSubscription]],
    *,
    served: set[str],
) -> set[str]:
    """Every subscription, page by page (cheaper for many customers); those of ``served``
    customers were read elsewhere. Returns the customers read."""
    for sub in backend.list_subscriptions(None):
        if sub.customer_id not in served and sub.live:
            by_customer[sub.customer_id].append(sub)
    return set(customers) | (set(by_customer) - served)


def match_items(
    subscriptions: Mapping[str, list[RemoteSubscription]],
    metrics: Iterable[Metric],
    meter_ids: Mapping[int, str],
) -> dict[Key, tuple[RemoteSubscription, RemoteItem]]:
    """Each (customer, metric)'s live item: the metric's price, or a metered price on its
    meter; the one with the latest period when several match."""
    by_price: dict[str, list[Metric]] = defaultdict(list)
    by_meter: dict[str, list[Metric]] = defaultdict(list)
    for metric in metrics:
        if metric.stripe_price_id:
            by_price[metric.stripe_price_id].append(metric)
        meter = meter_ids.get(metric.pk, "")
        if metric.is_metered and meter:
            by_meter[meter].append(metric)
    found: dict[Key, tuple[RemoteSubscription, RemoteItem]] = {}
    for customer, subs in subscriptions.items():
        for sub in subs:
            for item in sub.items:
                matched = list(by_price.get(item.price_id, ()))
                if item.meter_id and item.usage_type == "metered":
                    matched += [m for m in by_meter.get(item.meter_id, ()) if m not in matched]
                for metric in matched:
                    key = (customer, metric.pk)
                    if key not in found or _later(item, found[key][1]):
                        found[key] = (sub, item)
    return found


def refresh_links(
    live: LiveItems,
    metrics: list[Metric],
    report: Report,
    *,
    write: bool,
    only_subscription: str | None = None,
) -> None:
    """Bring the active links of the listed customers in line with ``live.items``.

    ``only_subscription`` limits deactivation to links of that subscription (a webhook about
    one subscription says nothing about the customer's others).

    Stripe's side of a link (IDs, period) is all a refresh writes on it: the desired
    quantity and its confirmation belong to ``set_quantity`` and the seat pushes, which may
    change them at any moment (see :class:`Refresh`).
    """
    metric_by_pk = {m.pk: m for m in metrics}
    links: dict[Key, SubscriptionItemLink] = {}
    customers = sorted(live.listed)
    for start in range(0, len(customers), CHUNK):
        rows = SubscriptionItemLink.objects.filter(
            active=True, metric__in=metrics, customer_id__in=customers[start : start + CHUNK]
        )
        links.update({(link.customer_id, link.metric_id): link for link in rows})
    refresh = Refresh()
    for key in sorted(set(links) | set(live.items)):
        customer, metric_pk = key
        metric, link, match = metric_by_pk[metric_pk], links.get(key), live.items.get(key)
        if match is None:
            change = _gone(customer, metric, link, refresh, only_subscription)
        else:
            change = _found(customer, metric, link, match, refresh, only_subscription)
        if change is not None:
            change.applied = write
            report.items.append(change)
    report.count("links_created", len(refresh.create) + len(refresh.replace))
    report.count("links_updated", len(refresh.update))
    report.count("links_deactivated", len(refresh.deactivate) + len(refresh.replace))
    if write:
        refresh.apply()


def _gone(
    customer: str,
    metric: Metric,
    link: SubscriptionItemLink | None,
    refresh: Refresh,
    only_subscription: str | None,
) -> ItemChange | None:
    """Stripe has no live item for the link any more: deactivate it (only within the one
    subscription a webhook is about)."""
    if link is None or not link.stripe_subscription_item_id:
        return None
    if only_subscription and link.stripe_subscription_id != only_subscription:
        return None
    refresh.deactivate.append(link.pk)
    return ItemChange(
        customer,
        metric.key,
        "deactivated",
        link.stripe_subscription_id,
        "",
        link.stripe_subscription_item_id,
        "the item or its subscription is gone or canceled in Stripe",
    )


def _found(
    customer: str,
    metric: Metric,
    link: SubscriptionItemLink | None,
    match: tuple[RemoteSubscription, RemoteItem],
    refresh: Refresh,
    only_subscription: str | None,
) -> ItemChange | None:
    """Stripe has a live item for the customer and metric: create, attach, refresh or
    replace the link."""
    sub, item = match
    if link is None:
        refresh.create.append(_new_link(customer, metric, sub, item, desired=None))
        return ItemChange(customer, metric.key, "created", sub.id, item.id)
    if link.stripe_subscription_item_id == item.id:
        if _set_period(link, sub, item):
            refresh.update.append(link)
        return None
    if not link.stripe_subscription_item_id:
        link.stripe_subscription_item_id = item.id
        _set_period(link, sub, item)
        refresh.update.append(link)
        if metric.kind == Metric.Kind.LICENSED and item.quantity is not None:
            refresh.adopt[link.pk] = item.quantity
        return ItemChange(customer, metric.key, "attached", sub.id, item.id)
    if only_subscription and not _newer(item, link):
        return None  # an older subscription's event: the link's newer item stays
    refresh.replace[link.pk] = (customer, metric, sub, item)
    return ItemChange(
        customer,
        metric.key,
        "replaced",
        sub.id,
        item.id,
        link.stripe_subscription_item_id,
        "the customer's item for this metric changed",
    )


#: The columns a refresh writes on an existing link: Stripe's side only.
STRIPE_FIELDS = [
    "stripe_subscription_id",
    "stripe_subscription_item_id",
    "current_period_start",
    "current_period_end",
    "livemode",
    "updated_at",
]


@dataclass
class Refresh:
    """What a refresh writes, never writing back a desired quantity it read.

    The links were read without locks, so their ``quantity`` may have changed since:
    existing links get only :data:`STRIPE_FIELDS`; a link that wants no quantity yet adopts
    Stripe's with an UPDATE conditional on that (``quantity IS NULL``); a replaced link's
    desired quantity is read again under a row lock, so a concurrent ``set_quantity`` either
    committed before (and is carried over) or waits and lands on the new link.
    """

    create: list[SubscriptionItemLink] = field(default_factory=list)
    update: list[SubscriptionItemLink] = field(default_factory=list)
    deactivate: list[int] = field(default_factory=list)
    #: Link pk -> Stripe's quantity, for attached licensed links that want none yet.
    adopt: dict[int, int] = field(default_factory=dict)
    #: Link pk -> what replaces it.
    replace: dict[int, tuple[str, Metric, RemoteSubscription, RemoteItem]] = field(
        default_factory=dict
    )

    def apply(self) -> None:
        links = SubscriptionItemLink.objects
        now = timezone.now()
        with transaction.atomic():
            desired = dict(
                links.select_for_update()
                .filter(pk__in=list(self.replace), active=True)
                .order_by("pk")
                .values_list("pk", "quantity")
            )
            # A link that another refresh replaced meanwhile is left to that one.
            replacing = [
                _new_link(*self.replace[pk], desired=quantity) for pk, quantity in desired.items()
            ]
            gone = [*self.deactivate, *desired]
            if gone:
                links.filter(pk__in=gone, active=True).update(active=False, updated_at=now)
            for link in self.update:
                link.updated_at = now
            for start in range(0, len(self.update), CHUNK):
                links.bulk_update(self.update[start : start + CHUNK], STRIPE_FIELDS)
            for pk, quantity in self.adopt.items():
                links.filter(pk=pk, quantity__isnull=True).update(
                    quantity=quantity, synced_quantity=quantity
                )
            links.bulk_create([*self.create, *replacing], batch_size=CHUNK)


def _new_link(
    customer: str,
    metric: Metric,
    sub: RemoteSubscription,
    item: RemoteItem,
    *,
    desired: int | None,
) -> SubscriptionItemLink:
    """A link for ``item``; a licensed one wants ``desired`` (a replaced link's quantity),
    else Stripe's quantity."""
    link = SubscriptionItemLink(customer_id=customer, metric=metric, livemode=sub.livemode)
    _set_period(link, sub, item)
    link.stripe_subscription_item_id = item.id
    if metric.kind == Metric.Kind.LICENSED:
        link.synced_quantity = item.quantity
        link.quantity = item.quantity if desired is None else desired
        if link.quantity != item.quantity:
            # The desired quantity carried over from the replaced item: push it.
            link.quantity_version = 1
    return link


def _set_period(link: SubscriptionItemLink, sub: RemoteSubscription, item: RemoteItem) -> bool:
    before = (
        link.stripe_subscription_id,
        link.current_period_start,
        link.current_period_end,
        link.livemode,
    )
    link.stripe_subscription_id = sub.id
    link.current_period_start = item.current_period_start
    link.current_period_end = item.current_period_end
    link.livemode = sub.livemode
    return before != (sub.id, item.current_period_start, item.current_period_end, sub.livemode)


def _newer(item: RemoteItem, link: SubscriptionItemLink) -> bool:
    if item.current_period_start is None or link.current_period_start is None:
        return True
    return item.current_period_start >= link.current_period_start


def _later(item: RemoteItem, other: RemoteItem) -> bool:
    def start(i: RemoteItem) -> float:
        return i.current_period_start.timestamp() if i.current_period_start else float("-inf")

    return start(item) > start(other)


def _from_djstripe(
    customers: set[str],
    by_customer: dict[str, list[RemoteSubscription]],
    now: datetime,
    *,
    backend: BaseBackend,
    any_age: bool,
) -> set[str]:
    """Customers whose dj-stripe subscriptions are all fresh (webhooks or a recent sync);
    their live subscriptions are added to ``by_customer``. The backend reads the stored
    Stripe JSON: :class:`ReadNotSupported`, with nothing added, when it can't."""
    max_age = billflow_settings.DJSTRIPE_MAX_AGE
    if not customers or (max_age is None and not any_age):
        return set()
    from djstripe.models import Subscription

    oldest = now - timedelta(seconds=float(max_age or 0))
    rows: dict[str, list[Subscription]] = defaultdict(list)
    ordered = sorted(customers)
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        for sub in Subscription.objects.filter(customer_id__in=chunk).prefetch_related("items"):
            rows[str(sub.customer_id)].append(sub)
    parsed: dict[str, list[RemoteSubscription]] = {}
    for customer, subs in rows.items():
        if not any_age and any(s.djstripe_updated < oldest for s in subs):
            continue
        parsed[customer] = [backend.parse_subscription(_djstripe_payload(sub)) for sub in subs]
    for customer, found in parsed.items():
        by_customer[customer].extend(s for s in found if s.live)
    return set(parsed)


def _djstripe_payload(sub: object) -> dict[str, Any]:
    """A dj-stripe subscription's stored Stripe JSON, with its items'."""
    data = dict(getattr(sub, "stripe_data", None) or {})
    items = [dict(getattr(item, "stripe_data", None) or {}) for item in sub.items.all()]  # type: ignore[attr-defined]
    if items:
        data["items"] = {"data": items}
    data.setdefault("id", sub.id)  # type: ignore[attr-defined]
    data.setdefault("customer", sub.customer_id)  # type: ignore[attr-defined]
    return data


def stored_items(customers: Collection[str], metrics: list[Metric]) -> set[Key]:
    """(customer, metric) pairs with an active link that has an item, from the database."""
    found: set[Key] = set()
    ordered = sorted(customers)
    for start in range(0, len(ordered), CHUNK):
        rows = SubscriptionItemLink.objects.filter(
            Q(active=True) & ~Q(stripe_subscription_item_id=""),
            metric__in=metrics,
            customer_id__in=ordered[start : start + CHUNK],
        ).values_list("customer_id", "metric_id")
        found.update(rows)
    return found
