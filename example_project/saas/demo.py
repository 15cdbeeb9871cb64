"""The example's main job: set up billing in Stripe, simulate two weeks of use, deliver,
compare."""

from __future__ import annotations

import os
import random
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import stripe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import F, Sum
from django.test import override_settings
from django.utils import timezone
from djstripe.models import Customer

import billflow_usage
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.delivery import DeliveryStats, deliver_pending
from billflow_usage.models import (
    Metric,
    SubscriptionItemLink,
    UsageEvent,
    UsageHourTotal,
    UsageLimit,
    UsageThresholdCrossing,
)
from billflow_usage.reconcile import SyncOptions, run_sync
from billflow_usage.testing.fake_stripe import FakeStripe
from saas.models import ApiCall, Member, Workspace
from saas.ports import pick
from saas.stripe_catalog import Catalog, create_catalog, subscribe

WORKSPACES = [("Acme", "acme.test"), ("Globex", "globex.test"), ("Initech", "initech.test")]
ENDPOINTS = ["/v1/search", "/v1/export", "/v1/report"]
ADMIN_USERNAME = "admin"
ADMIN_URL = "http://127.0.0.1:8000/admin/"
#: How far back the simulated API calls go, so the admin's daily chart has a curve. Only with
#: the embedded fake, whose subscriptions can start in the past (their billing period must
#: hold the usage); a real test account's usage all lands today.
HISTORY = timedelta(days=14)


@contextmanager
def stripe_connection() -> Iterator[FakeStripe | None]:
    """Use the configured Stripe, starting the embedded fake when no key is configured."""
    if not settings.EMBEDDED_FAKE_STRIPE:
        yield None
        return
    address = urlsplit(settings.EMBEDDED_FAKE_STRIPE)
    host = address.hostname or "127.0.0.1"
    fake = FakeStripe(host=host, port=pick(address.port or 12111, host))
    try:
        fake.start()
    except OSError as exc:
        raise CommandError(
            f"Cannot start the embedded fake Stripe on {host}:{fake.port} ({exc}). "
            "Set FAKE_STRIPE_URL to another address."
        ) from exc
    url = urlunsplit((address.scheme or "http", f"{host}:{fake.port}", "", "", ""))
    try:
        # Where the fake got its port, the whole run (backend, sync) is pointed at it.
        with override_settings(
            BILLFLOW_USAGE={**settings.BILLFLOW_USAGE, "STRIPE_API_BASE": url},
            EMBEDDED_FAKE_STRIPE=url,
        ):
            yield fake
    finally:
        fake.stop()


def make_stripe_unreliable(fake: FakeStripe) -> None:
    """From here on 20% of writes fail: 5xx, 429, and answers lost after Stripe stored them."""
    fake.faults.seed(7)
    fake.faults.add("status", status=500, method="POST", rate=0.07)
    fake.faults.add("status", status=429, code="lock_timeout", method="POST", rate=0.06)
    fake.faults.add("drop_after_processing", method="POST", rate=0.07)


def deliver_everything(backend: StripeBackend, *, limit: float = 120.0) -> DeliveryStats:
    """Run delivery (as ``billflow_worker`` does) until nothing is left, retries included."""
    total = DeliveryStats()
    deadline = time.monotonic() + limit
    while _undelivered() and time.monotonic() < deadline:
        total += deliver_pending(backend=backend)
        time.sleep(0.2)
    return total


def _undelivered() -> bool:
    return (
        UsageEvent.objects.filter(status=UsageEvent.Status.PENDING).exists()
        or SubscriptionItemLink.objects.filter(quantity_version__gt=F("synced_version")).exists()
    )


@billflow_usage.tracking_disabled()
def reset() -> None:
    """Forget an earlier run's data, so the demo can run again on the same database."""
    UsageEvent.objects.all().delete()
    UsageHourTotal.objects.all().delete()
    UsageThresholdCrossing.objects.all().delete()
    SubscriptionItemLink.objects.all().delete()
    Customer.objects.filter(subscriber__isnull=False).delete()
    Workspace.objects.all().delete()


def seed(
    client: stripe.StripeClient, *, started: datetime, fake: FakeStripe | None
) -> tuple[Catalog, list[Workspace]]:
    """The catalogue and the subscribed workspaces; with the fake, the subscriptions start at
    ``started`` (its clock is set back while they are made)."""
    catalog = create_catalog(client)
    workspaces = []
    if fake is not None:
        fake.clock.set(started.timestamp())
    try:
        for name, domain in WORKSPACES:
            workspace = Workspace.objects.create(name=name, email=f"billing@{domain}")
            subscribe(client, workspace, catalog)
            workspaces.append(workspace)
    finally:
        if fake is not None:
            fake.clock.reset()
    return catalog, workspaces


def plan_limits() -> None:
    """Every workspace may make 1,000 API calls a period (warned at 80% and 100%)."""
    metric = Metric.objects.get(key="api-calls")
    UsageLimit.objects.update_or_create(
        metric=metric,
        customer_id="",
        stripe_price_id="",
        defaults={"limit": 1000, "kind": UsageLimit.Kind.HARD, "thresholds": [80, 100]},
    )


def simulate_traffic(
    workspaces: list[Workspace], *, history: timedelta, now: datetime, seed: int = 7
) -> None:
    """Members join and leave and API calls are served over ``history`` (up to ``now``); the
    trackers in saas/usage.py record every one of them as usage, in the same transaction as
    the save, at the call's own time."""
    rng = random.Random(seed)
    for workspace in workspaces:
        domain = workspace.email.split("@")[1]
        with transaction.atomic():  # one seat push per workspace, however many changes
            members = [
                Member.objects.create(workspace=workspace, email=f"user{i}@{domain}")
                for i in range(rng.randint(3, 8))
            ]
            members[0].active = False
            members[0].save()
        for _ in range(rng.randint(40, 160)):
            ApiCall.objects.create(
                workspace=workspace,
                endpoint=rng.choice(ENDPOINTS),
                created_at=now - history * _age(rng),
            )


def _age(rng: random.Random) -> float:
    """How far back a call is, as a share of the history: traffic grows towards today, with
    two quieter days a week, so the daily chart is a curve rather than a single point."""
    while True:
        age = 1 - rng.random() ** 0.5  # denser near 0 (today)
        day = int(age * 14)
        if day % 7 not in (5, 6) or rng.random() < 0.4:
            return age


def report(client: stripe.StripeClient, catalog: Catalog, since: datetime) -> list[Comparison]:
    """Per customer and metric: what the ledger holds next to what Stripe holds."""
    ledger = dict(
        UsageEvent.objects.filter(metric=catalog.api_calls, status=UsageEvent.Status.SENT)
        .values_list("customer_id")
        .annotate(total=Sum("value"))
    )
    comparisons = []
    links = SubscriptionItemLink.objects.select_related("metric")
    for link in links.order_by("customer_id", "metric__key"):
        if link.metric.kind == Metric.Kind.METERED:
            ours = ledger.get(link.customer_id, 0)
            theirs = _meter_total(client, catalog.api_calls, link.customer_id, since)
        else:
            ours = link.quantity or 0
            item = client.v1.subscription_items.retrieve(link.stripe_subscription_item_id)
            theirs = item.quantity or 0
        comparisons.append(Comparison(link.customer_id, link.metric.key, ours, theirs))
    return comparisons


def ensure_admin_login() -> str:
    """Create the superuser ``admin`` unless it exists; say how to log in as it.

    Only for the embedded fake Stripe: an admin with a printed password has no place next to
    a real Stripe account. The password is ``DJANGO_SUPERUSER_PASSWORD`` (as for
    ``createsuperuser --noinput``) or a new random one.
    """
    users = get_user_model().objects
    if users.filter(username=ADMIN_USERNAME).exists():
        return (
            f"log in as {ADMIN_USERNAME!r}, made by an earlier run "
            f"(`python manage.py changepassword {ADMIN_USERNAME}` sets a new password)"
        )
    given = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
    password = given or secrets.token_urlsafe(12)
    users.create_superuser(username=ADMIN_USERNAME, email="", password=password)
    shown = "the password in DJANGO_SUPERUSER_PASSWORD" if given else f"password {password!r}"
    return f"log in as {ADMIN_USERNAME!r} with {shown}"


@dataclass(frozen=True)
class Comparison:
    customer_id: str
    metric: str
    ledger: int
    stripe: int

    HEADER = f"{'customer':<28} {'metric':<10} {'ledger':>8} {'stripe':>8}  agree"

    @property
    def agree(self) -> bool:
        return self.ledger == self.stripe

    def __str__(self) -> str:
        agree = "yes" if self.agree else "NO"
        return (
            f"{self.customer_id:<28} {self.metric:<10} {self.ledger:>8} {self.stripe:>8}  {agree}"
        )


def _meter_total(
    client: stripe.StripeClient, metric: Metric, customer_id: str, since: datetime
) -> int:
    start = since.replace(second=0, microsecond=0)
    end = (timezone.now() + timedelta(minutes=2)).replace(second=0, microsecond=0)
    summaries = client.v1.billing.meters.event_summaries.list(
        metric.stripe_meter_id,
        {
            "customer": customer_id,
            "start_time": int(start.timestamp()),
            "end_time": int(end.timestamp()),
        },
    )
    return sum(int(summary.aggregated_value) for summary in summaries.auto_paging_iter())


def run(write: Callable[[str], None]) -> None:
    with stripe_connection() as fake:
        where = "Stripe test mode" if fake is None else f"the embedded fake Stripe at {fake.url}"
        write(f"Billing against {where}.")
        backend = StripeBackend()
        client = backend.client
        reset()
        now = timezone.now()
        history = HISTORY if fake is not None else timedelta(0)
        since = now - history - timedelta(days=1)
        catalog, workspaces = seed(client, started=since, fake=fake)
        plan_limits()
        write(f"Created a meter, two prices and {len(workspaces)} subscribed customers.")
        simulate_traffic(workspaces, history=history, now=now)
        recorded = UsageEvent.objects.count()
        days = UsageEvent.objects.dates("occurred_at", "day").count()
        write(
            f"Recorded {recorded} usage events over {days} day(s) and {len(workspaces)} seat "
            "counts in the ledger."
        )
        if fake is not None:
            make_stripe_unreliable(fake)
            write("The fake Stripe now fails 20% of writes (5xx, 429, answers lost after storing).")
        stats = deliver_everything(backend)
        write(f"Delivery: {stats.summary()}.")
        if fake is not None:
            injected = ", ".join(f"{count} {kind}" for kind, count in fake.faults.counters.items())
            write(f"Faults injected: {injected}.")
            fake.faults.clear()
        comparisons = report(client, catalog, since)
        write(Comparison.HEADER)
        for comparison in comparisons:
            write(str(comparison))
        sync = run_sync(SyncOptions(dry_run=True), backend=backend)
        drift = sync.summary()["drift_remaining"]
        write(f"Reconciliation (billflow_sync --dry-run): {drift} drift, report #{sync.report_id}.")
        backend.close()
        if fake is not None:
            fake.save_state(settings.FAKE_STRIPE_STATE)
            write(f"Saved the fake Stripe's objects to {settings.FAKE_STRIPE_STATE}.")
            login = ensure_admin_login()
            write(f"See it all in the admin: run `make serve`, open {ADMIN_URL} and {login}.")
    if not all(comparison.agree for comparison in comparisons):
        raise CommandError("The ledger and Stripe disagree (see the lines marked NO).")
