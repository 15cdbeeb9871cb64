"""A model of everything that happens to a billing ledger, checked against the real library.

Hypothesis interleaves every actor at random (the application recording usage through the
API, trackers and the bulk paths; seats changing; workers delivering, dying mid-batch or
marking after their lease ran out; Stripe failing in each way it can; staff retrying and
cancelling in the admin; ``billflow_sync`` with and without ``--apply``; drift made behind the
ledger's back; the delivery mode switched between runs) against the real library, the fake
Stripe over HTTP and the database. The model keeps its own account of what was recorded.

At each quiescent point (:meth:`BillingMachine.settle`, and at the end of every example)
Stripe is healed, time passes until nothing is due and the invariants are checked:

- per customer and metric, Stripe's total equals the recorded usage (and so does the ledger's);
- no identifier accepted twice, and Stripe holds exactly the events the ledger sent;
- Stripe's seat quantity equals the desired one, which equals the tracker's count;
- nothing is pending forever, and every failed row says why;
- ``billflow_sync --apply`` on a settled ledger finds nothing to repair (it never makes drift).
"""

from __future__ import annotations

import io
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar

import stripe
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.test import Client, TestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import billflow_usage
from billflow_usage.backends import get_backend
from billflow_usage.backends.base import BaseBackend, Cancellation, MeterEvent, QuantityPush, Result
from billflow_usage.delivery import claim, deliver_pending, marking, sending
from billflow_usage.identifiers import CORRECTION_PREFIX
from billflow_usage.models import Metric, SubscriptionItemLink, SyncReport, UsageEvent
from billflow_usage.testing.fake_stripe import EventDelivery, FakeStripe
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from billflow_usage.tracking import metric_cache
from billflow_usage.tracking.registry import registry as project_registry
from billflow_usage.tracking.seats import refresh_stale_quantities
from tests.model.world import LICENSED, METERED, active_members, build_account
from tests.model.world import declare_trackers as declare_world_trackers
from tests.testapp.models import Member, Order

#: Where every example starts (a Monday, mid-month; the subscriptions began 3 days earlier).
START = datetime.fromisoformat("2026-06-15T09:00:00+00:00")
LEASE = 300
#: The signing secret of the Event Destination that posts Stripe's meter error reports.
WEBHOOK_SECRET = "whsec_model"
WEBHOOK_URL = "/stripe/meter-errors/"
#: Settings of every example; ``switch_delivery`` changes the mode ones.
SETTINGS: dict[str, Any] = {
    "BACKEND": "billflow_usage.backends.stripe.StripeBackend",
    "METER_API": "v1",
    "DELIVERY": "worker",
    "AGGREGATION_WINDOW": 0,
    "BATCH_SIZE": 5,
    # One request at a time: the order of requests, and so the faults they meet, is the
    # same every time Hypothesis replays an example.
    "DELIVERY_CONCURRENCY": 1,
    "CLAIM_LEASE": LEASE,
    "MAX_ATTEMPTS": 10_000,
    "RETRY_BASE_DELAY": 1.0,
    "RETRY_MAX_DELAY": 60.0,
    "SETTLING_WINDOW": 0,
    "SYNC_RATE_LIMIT": 0,
    "DJSTRIPE_MAX_AGE": None,
    "METER_WEBHOOK_SECRET": WEBHOOK_SECRET,
}
EVENT_ROUTES = ("/v1/billing/meter_events", "/v2/billing/meter_event_stream")
#: How long settling may take before "nothing pending forever" is declared broken.
SETTLE_ROUNDS = 40

customers = st.integers(min_value=0, max_value=1)
picks = st.integers(min_value=0, max_value=10_000)


class WorkerKilled(BaseException):
    """The worker process died (SIGKILL): nothing after this point of its batch runs."""


class DyingBackend(BaseBackend):
    """The configured backend, in a worker that dies right after Stripe answered a send."""

    def __init__(self, inner: BaseBackend) -> None:
        super().__init__()
        self.inner = inner
        self.one_call_per_customer_meter = inner.one_call_per_customer_meter
        self.needs_subscription_items = inner.needs_subscription_items
        self.sets_totals_per_second = inner.sets_totals_per_second

    def send_meter_events(self, events: Sequence[MeterEvent]) -> list[Result]:
        self.inner.send_meter_events(events)
        raise WorkerKilled

    def push_quantity(self, push: QuantityPush) -> Result:
        self.inner.push_quantity(push)
        raise WorkerKilled

    def cancel_meter_event(self, cancellation: Cancellation) -> Result:
        return self.inner.cancel_meter_event(cancellation)

    def is_outage(self, result: Result) -> bool:
        return self.inner.is_outage(result)


class BillingMachine(RuleBasedStateMachine):
    """Set ``fake`` (a running FakeStripe) on a subclass before running it."""

    fake: ClassVar[FakeStripe]
    #: What every example explored, for the run's summary (set by the test).
    explored: ClassVar[Counter[str]]

    def __init__(self) -> None:
        super().__init__()
        self._exits: list[Any] = []
        #: (metric, customer) -> what the application recorded, by the metric's formula.
        self.expected: Counter[tuple[str, str]] = Counter()
        self.orders: dict[int, tuple[int, int]] = {}  # pk -> (workspace index, quantity)
        self.gone_order_pks: list[int] = []
        self.members: dict[int, int] = {}  # pk -> workspace index (active members)
        self.licenses: dict[str, int] = {}
        #: Stripe events made or removed behind the ledger's back, until sync repairs them.
        self.drift = False
        #: Identifiers of ledger events Stripe lost (cancelled behind the ledger's back).
        self.lost: set[str] = set()
        #: A subscription was replaced since links were last refreshed.
        self.churned = False
        #: Meter error reports Stripe delivered, to deliver again (Stripe retries, replays).
        self.reports: list[EventDelivery] = []
        #: Reports the endpoint answered 502 (it couldn't fetch the event from Stripe: the key
        #: refused, an outage): Stripe delivers them again until one gets a 2xx.
        self.unanswered: list[EventDelivery] = []
        #: Metrics whose meter is deactivated in Stripe right now.
        self.deactivated: set[str] = set()
        self.settings = {
            **SETTINGS,
            "STRIPE_API_KEY": FAKE_STRIPE_API_KEY,
            "STRIPE_API_BASE": self.fake.url,
        }

    # -- the world --------------------------------------------------------------------------

    @initialize()
    def open_account(self) -> None:
        self.explored["examples"] += 1
        self.clock = self._enter(time_machine.travel(START, tick=False))
        self._enter(self._rolled_back())
        self._enter(self._settings())
        self.fake.reset()
        metric_cache.clear()
        self.saved_trackers = project_registry.get_trackers()
        project_registry.clear()
        declare_world_trackers(project_registry)
        self.account = build_account(self.fake, START)
        self.staff = User.objects.create_superuser("staff", "staff@example.com", "pw")
        self.admin = Client()
        self.admin.force_login(self.staff)

    def teardown(self) -> None:
        try:
            if hasattr(self, "account"):
                self.settle()
        finally:
            self.explored["stripe requests"] += len(self.fake.request_log)
            project_registry.clear()
            for tracker in getattr(self, "saved_trackers", ()):
                project_registry.register(tracker)
            metric_cache.clear()
            self.fake.reset()
            while self._exits:
                self._exits.pop().__exit__(None, None, None)

    def _enter(self, context: Any) -> Any:
        value = context.__enter__()
        self._exits.append(context)
        return value

    @contextmanager
    def _rolled_back(self) -> Iterator[None]:
        """Each example's rows vanish afterwards (a savepoint in the test's transaction)."""
        with transaction.atomic():
            yield
            transaction.set_rollback(True)

    @contextmanager
    def _settings(self) -> Iterator[None]:
        with override_settings(BILLFLOW_USAGE=self.settings):
            yield

    @contextmanager
    def committed(self) -> Iterator[None]:
        """A host transaction that commits: its on_commit work runs (seat recounts, the
        in-request delivery attempt)."""
        with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
            yield

    def customer(self, index: int) -> str:
        return self.account.customers[index]

    # -- the application -------------------------------------------------------------------

    @rule(index=customers, value=st.integers(min_value=-5, max_value=40))
    def record_calls(self, index: int, value: int) -> None:
        customer = self.customer(index)
        with self.committed():
            billflow_usage.record_usage("calls", customer, value)
        self.expected[("calls", customer)] += value

    @rule(index=customers)
    def record_an_order_by_hand(self, index: int) -> None:
        customer = self.customer(index)
        with self.committed():
            billflow_usage.record_usage("orders", customer)
        self.expected[("orders", customer)] += 1

    @rule(
        usages=st.lists(
            st.tuples(customers, st.integers(min_value=1, max_value=9)), min_size=1, max_size=6
        )
    )
    def record_in_bulk(self, usages: list[tuple[int, int]]) -> None:
        with self.committed():
            billflow_usage.record_usage_bulk(
                billflow_usage.Usage("calls", self.customer(index), value)
                for index, value in usages
            )
        for index, value in usages:
            self.expected[("calls", self.customer(index))] += value

    @rule(index=customers, quantity=st.integers(min_value=1, max_value=5), reuse=picks)
    def place_order(self, index: int, quantity: int, reuse: int) -> None:
        """A tracked save; sometimes with the primary key of a deleted order (restores,
        natural keys and explicit keys bring primary keys back)."""
        workspace = self.account.workspaces[index]
        pk = (
            self.gone_order_pks.pop(reuse % len(self.gone_order_pks))
            if reuse % 3 == 0 and (self.gone_order_pks)
            else None
        )
        with self.committed():
            order = Order.objects.create(pk=pk, workspace=workspace, quantity=quantity)
        self.orders[order.pk] = (index, quantity)
        self.expected[("orders", workspace.stripe_customer_id)] += 1
        self.expected[("units", workspace.stripe_customer_id)] += quantity

    @precondition(lambda self: self.orders)
    @rule(pick=picks, quantity=st.integers(min_value=0, max_value=7))
    def change_order(self, pick: int, quantity: int) -> None:
        pk = sorted(self.orders)[pick % len(self.orders)]
        index, old = self.orders[pk]
        with self.committed():
            order = Order.objects.get(pk=pk)
            order.quantity = quantity
            order.save()
        self.orders[pk] = (index, quantity)
        self.expected[("units", self.customer(index))] += quantity - old

    @precondition(lambda self: self.orders)
    @rule(pick=picks)
    def delete_order(self, pick: int) -> None:
        pk = sorted(self.orders)[pick % len(self.orders)]
        index, quantity = self.orders.pop(pk)
        with self.committed():
            Order.objects.get(pk=pk).delete()
        self.gone_order_pks.append(pk)
        self.expected[("units", self.customer(index))] -= quantity

    @rule(index=customers)
    def add_member(self, index: int) -> None:
        with self.committed():
            member = Member.objects.create(workspace=self.account.workspaces[index], name="m")
        self.members[member.pk] = index

    @precondition(lambda self: self.members)
    @rule(pick=picks, delete=st.booleans())
    def remove_member(self, pick: int, delete: bool) -> None:
        pk = sorted(self.members)[pick % len(self.members)]
        del self.members[pk]
        with self.committed():
            member = Member.objects.get(pk=pk)
            if delete:
                member.delete()
            else:
                member.active = False
                member.save()

    @rule(index=customers, quantity=st.integers(min_value=0, max_value=30))
    def set_licenses(self, index: int, quantity: int) -> None:
        customer = self.customer(index)
        with self.committed():
            billflow_usage.set_quantity("licenses", customer, quantity)
        self.licenses[customer] = quantity

    # -- workers ---------------------------------------------------------------------------

    @rule()
    def worker_round(self) -> None:
        """What one ``billflow_worker`` loop does."""
        refresh_stale_quantities()
        deliver_pending(max_batches=1)

    @rule()
    def worker_dies_after_stripe_answered(self) -> None:
        """SIGKILL between Stripe's answer and marking the batch: the rows stay claimed."""
        backend = get_backend()
        try:
            deliver_pending(backend=DyingBackend(backend), max_batches=1)
        except WorkerKilled:
            pass
        finally:
            backend.close()

    @rule()
    def worker_marks_after_its_lease_ran_out(self) -> None:
        """A worker stalls after sending; its lease runs out, another worker redoes the batch,
        then the first one wakes up and marks what it had sent."""
        backend = get_backend()
        try:
            held = claim.claim_events(
                using="default",
                now=self.now(),
                batch_size=int(self.settings["BATCH_SIZE"]),
                lease=LEASE,
                exclusive=backend.one_call_per_customer_meter,
                aggregation_window=float(self.settings["AGGREGATION_WINDOW"]),
            )
            if not held.events:
                return
            items, decided = sending.plan(held, using="default")
            sent, _ = sending.send(items, backend, deadline=None)
            self.clock.shift(LEASE + 1)
            deliver_pending(backend=backend)
            marking.mark([*decided, *sent], token=held.token, using="default", backend=backend)
        finally:
            backend.close()

    @rule(seconds=st.sampled_from([1, 20, 61, LEASE + 1, 900]))
    def time_passes(self, seconds: int) -> None:
        self.clock.shift(seconds)

    @rule(
        meter_api=st.sampled_from(["v1", "v2"]),
        window=st.sampled_from([0, 60]),
        delivery=st.sampled_from(["worker", "on_commit"]),
    )
    def switch_delivery(self, meter_api: str, window: int, delivery: str) -> None:
        """A deploy with other settings: rows recorded before are delivered the new way."""
        self.settings.update(METER_API=meter_api, AGGREGATION_WINDOW=window, DELIVERY=delivery)

    # -- Stripe ----------------------------------------------------------------------------

    @rule(
        fault=st.sampled_from(
            ["500", "503", "429", "lock_timeout", "drop", "outage", "stored", "stored_after"]
        ),
        times=st.integers(min_value=1, max_value=3),
        events_only=st.booleans(),
    )
    def stripe_fails(self, fault: str, times: int, events_only: bool) -> None:
        """The next requests fail: an error answer, an answer lost after Stripe stored the
        event, or no connection at all."""
        routes = EVENT_ROUTES if events_only else ("*",)
        for route in routes:
            if fault in ("500", "503", "429"):
                self.fake.faults.add("status", status=int(fault), route=route, times=times)
            elif fault == "lock_timeout":
                self.fake.faults.add(
                    "status", status=429, code="lock_timeout", route=route, times=times
                )
            elif fault == "drop":
                self.fake.faults.add("drop_after_processing", route=route, times=times)
            elif fault == "stored":
                self.fake.faults.add("stored_error", route=route, times=times)
            elif fault == "stored_after":
                self.fake.faults.add("stored_error_after_effect", route=route, times=times)
            else:
                self.fake.faults.add("outage", route=route, times=times)

    @precondition(lambda self: "calls" not in self.deactivated)
    @rule(index=customers, value=st.integers(min_value=1, max_value=30))
    def stripe_counts_more_than_recorded(self, index: int, value: int) -> None:
        """An event sent to Stripe by something else (an old script, a second app)."""
        self.fake.record_meter_event(
            "calls",
            self.customer(index),
            value,
            identifier=f"elsewhere-{uuid.uuid4().hex}",
            timestamp=int(self.now().timestamp()),
        )
        self.drift = True

    @precondition(lambda self: UsageEvent.objects.filter(metric__key="calls", status="sent"))
    @rule(pick=picks)
    def stripe_loses_an_event(self, pick: int) -> None:
        """An event the ledger sent is cancelled by something else (a Dashboard user). Only
        one Stripe holds: a stream event Stripe refused after accepting it (its meter was
        deactivated) is "sent" in the ledger until the error report arrives, and can't be
        cancelled."""
        held = {event["identifier"] for event in self.fake.meter_events("calls")}
        sent = list(
            UsageEvent.objects.filter(
                metric__key="calls",
                status="sent",
                group__isnull=True,
                sent_at__gte=self.now() - timedelta(hours=23),  # Stripe cancels within 24 h
                identifier__in=held,
            )
            .exclude(identifier__in=self.lost)
            .exclude(identifier__startswith=CORRECTION_PREFIX)
            .values_list("identifier", flat=True)
        )
        if sent:
            identifier = sent[pick % len(sent)]
            self.fake.cancel_meter_event("calls", identifier)
            self.lost.add(identifier)
            self.drift = True

    @rule()
    def api_key_revoked(self) -> None:
        """The key is rolled in the Dashboard before the new one is deployed."""
        self.fake.keys.revoke(FAKE_STRIPE_API_KEY)

    @rule()
    def api_key_works_again(self) -> None:
        self.fake.keys.restore(FAKE_STRIPE_API_KEY)

    @rule()
    def stripe_forgets_v2_sessions(self) -> None:
        """Stripe restarted: the stream's session tokens are unknown (401) from now on."""
        self.fake.forget_sessions()

    @rule(key=st.sampled_from(["calls", "units"]))
    def meter_deactivated(self, key: str) -> None:
        """A meter deactivated in the Dashboard: v1 events are refused (rows fail), stream
        events are accepted and refused later, in an error report."""
        self.fake.deactivate_meter(Metric.objects.get(key=key).stripe_meter_id)
        self.deactivated.add(key)

    @rule()
    def meters_reactivated(self) -> None:
        for meter_id in Metric.objects.exclude(stripe_meter_id="").values_list(
            "stripe_meter_id", flat=True
        ):
            self.fake.reactivate_meter(meter_id)
        self.deactivated.clear()

    @rule()
    def stripe_reports_meter_errors(self) -> None:
        """Stripe's Event Destination posts the reports of stream events it refused, a while
        after it refused them (it validates asynchronously), and again those that got no
        2xx (signed again, now)."""
        self.clock.shift(30)
        retries, self.unanswered = self.unanswered, []
        for delivery in retries:
            self.deliver_report(delivery, delivery.signed(int(self.now().timestamp())))
        for delivery in self.fake.emit_meter_error_events(WEBHOOK_SECRET):
            self.deliver_report(delivery, delivery.signature)
            self.reports.append(delivery)

    @precondition(lambda self: self.reports)
    @rule(pick=picks, signed_again=st.booleans())
    def stripe_delivers_a_report_again(self, pick: int, signed_again: bool) -> None:
        """A retried delivery (signed again, now), or a captured request replayed as it was:
        neither may fail a row that was sent since."""
        delivery = self.reports[pick % len(self.reports)]
        if signed_again:
            self.deliver_report(delivery, delivery.signed(int(self.now().timestamp())))
        else:
            self.deliver_report(delivery, delivery.signature)

    @rule(index=customers, key=st.sampled_from(LICENSED))
    def subscription_replaced(self, index: int, key: str) -> None:
        """The customer's seat subscription is cancelled and a new one started (a plan
        change done in the Dashboard): its subscription item changes."""
        customer = self.customer(index)
        self.fake.cancel_subscription(self.account.subscriptions[key][customer])
        price = Metric.objects.get(key=key).stripe_price_id
        subscription = self.fake.create_subscription(customer, price, quantity=0)
        self.account.subscriptions[key][customer] = subscription["id"]
        self.account.items[key][customer] = subscription["items"]["data"][0]["id"]
        self.churned = True

    # -- operators -------------------------------------------------------------------------

    @precondition(lambda self: UsageEvent.objects.filter(status="failed").exists())
    @rule(count=st.integers(min_value=1, max_value=5))
    def staff_retries_failed_rows(self, count: int) -> None:
        rows = UsageEvent.objects.filter(status="failed").order_by("-pk")[:count]
        self.admin_action("retry_failed", list(rows))

    @rule(count=st.integers(min_value=1, max_value=3), newest=st.booleans())
    def staff_cancels_rows(self, count: int, newest: bool) -> None:
        candidates = UsageEvent.objects.exclude(status="cancelled").exclude(
            identifier__startswith=CORRECTION_PREFIX
        )
        rows = list(candidates.order_by("-pk" if newest else "pk")[:count])
        if not rows:
            return
        held = {event["identifier"] for event in self.fake.meter_events()}
        self.admin_action("cancel_events", rows)
        self.lose_cancelled_behind_an_error(rows, held)
        cancelled = UsageEvent.objects.filter(
            pk__in=[r.pk for r in rows], status="cancelled"
        ).annotate(sent_as=Coalesce("group__identifier", "identifier"))
        for row in cancelled:
            self.forget(row)
            if row.sent_as in self.lost:
                # Stripe had lost it already ("already cancelled" counts as cancelled), and
                # billflow_sync may have made up for it: the next sync takes that back.
                self.lost.discard(row.sent_as)
                self.drift = True

    def lose_cancelled_behind_an_error(self, rows: list[UsageEvent], held: set[str]) -> None:
        """Stripe may cancel an event and answer an error (stored under the request's key):
        Cancel can't tell and leaves the row sent. For the ledger, Stripe lost that event:
        billflow_sync makes up for it."""
        gone = held - {event["identifier"] for event in self.fake.meter_events()}
        for sent_as in (
            UsageEvent.objects.filter(pk__in=[r.pk for r in rows], status="sent")
            .annotate(sent_as=Coalesce("group__identifier", "identifier"))
            .values_list("sent_as", flat=True)
        ):
            if sent_as in gone:
                self.lost.add(sent_as)
                self.drift = True

    @rule(apply=st.booleans())
    def billflow_sync(self, apply: bool) -> None:
        report = self.sync(apply=apply)
        # Links follow a replaced subscription only once a sync could read Stripe's
        # subscriptions (not with the key revoked): the next one does.
        if not any(error["step"] == "items" for error in report.report["errors"]):
            self.churned = False

    @rule()
    def billflow_sync_dry_run_changes_nothing(self) -> None:
        before = self.ledger_state()
        posts = self.fake.request_count(method="POST")
        self.sync(dry_run=True)
        assert self.ledger_state() == before
        assert self.fake.request_count(method="POST") == posts

    # -- quiescent points and the invariants ------------------------------------------------

    @invariant()
    def stripe_holds_only_what_the_ledger_recorded(self) -> None:
        """After every step, whatever is in flight: each event Stripe holds is one the ledger
        recorded (a row's identifier, or its delivery group's), accepted once."""
        self.explored["steps"] += 1
        if not hasattr(self, "account"):
            return
        accepted = Counter(event["identifier"] for event in self.fake.meter_events())
        assert [i for i, n in accepted.items() if n > 1] == [], "accepted twice"
        known = set(UsageEvent.objects.values_list("identifier", flat=True))
        known |= set(UsageEvent.objects.values_list("group__identifier", flat=True))
        phantoms = {i for i in accepted if i not in known and not i.startswith("elsewhere-")}
        assert phantoms == set(), "Stripe holds events the ledger never recorded"

    @rule()
    def settle(self) -> None:
        """Stripe heals and time passes until nothing is due; then the invariants hold."""
        self.explored["quiescent checks"] += 1
        self.fake.faults.clear()
        self.fake.keys.reset()
        self.meters_reactivated()
        self.stripe_reports_meter_errors()
        assert not self.unanswered, "meter error reports refused with Stripe healed"
        self.staff_retries_everything_failed()
        if self.churned:
            self.sync()  # the operator's cron: links follow the new subscription items
            self.churned = False
        self.drain()
        if self.drift:
            self.clock.shift(120)  # summaries are per minute: let the drift's minute close
            self.sync(apply=True)
            self.drift = False
            self.drain()
        self.assert_billing_invariants()
        corrections = UsageEvent.objects.filter(identifier__startswith=CORRECTION_PREFIX).count()
        self.clock.shift(120)
        report = self.sync(apply=True)
        assert report.drift_remaining == 0, report.report
        assert (
            UsageEvent.objects.filter(identifier__startswith=CORRECTION_PREFIX).count()
            == corrections
        ), "billflow_sync --apply repaired drift on a settled ledger"

    def staff_retries_everything_failed(self) -> None:
        """What an operator does once the cause is fixed (the action takes 1,000 at most)."""
        while UsageEvent.objects.filter(status="failed").exists():
            before = UsageEvent.objects.filter(status="failed").count()
            self.admin_action("retry_failed", list(UsageEvent.objects.filter(status="failed")))
            assert UsageEvent.objects.filter(status="failed").count() < before, (
                "failed rows the operator can't retry: "
                f"{list(UsageEvent.objects.filter(status='failed').values_list('last_error_code'))}"
            )

    def drain(self) -> None:
        for _ in range(SETTLE_ROUNDS):
            if not self.anything_due():
                return
            self.clock.shift(61)  # past the longest backoff, a lease and seat spacing
            refresh_stale_quantities()
            deliver_pending()
        raise AssertionError(f"still due after {SETTLE_ROUNDS} rounds: {self.due_summary()}")

    def anything_due(self) -> bool:
        return bool(
            UsageEvent.objects.filter(status="pending").exists()
            or self.unsynced_links().exists()
            or SubscriptionItemLink.objects.filter(quantity_stale=True).exists()
        )

    def due_summary(self) -> str:
        pending = list(
            UsageEvent.objects.filter(status="pending").values_list(
                "identifier", "attempts", "last_error_code"
            )[:5]
        )
        links = list(self.unsynced_links().values_list("customer_id", "metric__key")[:5])
        return f"pending {pending}, unsynced seats {links}"

    def unsynced_links(self) -> Any:
        return SubscriptionItemLink.objects.filter(
            active=True, metric__kind=Metric.Kind.LICENSED
        ).exclude(synced_version=F("quantity_version"))

    def assert_billing_invariants(self) -> None:
        failed = UsageEvent.objects.filter(status="failed")
        for code, message in failed.values_list("last_error_code", "last_error_message"):
            assert code, "a failed row must say why"
            assert message, "a failed row must say what to do"
        assert not failed.exists(), f"rows failed: {list(failed.values_list('last_error_code'))}"
        for key, formula in METERED.items():
            self.check_metered(key, formula)
        for customer in self.account.customers:
            self.check_seats(customer)

    def check_metered(self, key: str, formula: str) -> None:
        live = self.fake.meter_events(key)
        identifiers = Counter(event["identifier"] for event in live)
        assert [i for i, n in identifiers.items() if n > 1] == [], "accepted twice"
        sent = set(
            UsageEvent.objects.filter(metric__key=key, status="sent")
            .annotate(sent_as=Coalesce("group__identifier", "identifier"))
            .values_list("sent_as", flat=True)
        )
        elsewhere = {i for i in identifiers if i.startswith("elsewhere-")}
        billed, wanted = set(identifiers) - elsewhere, sent - self.lost
        assert billed == wanted, (
            f"{key}: Stripe holds {sorted(billed - wanted)} the ledger didn't send (or lost), "
            f"misses {sorted(wanted - billed)}"
        )
        recorded: dict[str, int] = defaultdict(int)
        for customer, value in (
            UsageEvent.objects.filter(metric__key=key)
            .exclude(status="cancelled")
            .exclude(identifier__startswith=CORRECTION_PREFIX)
            .values_list("customer_id", "value")
        ):
            recorded[customer] += 1 if formula == "count" else value
        for customer in self.account.customers:
            want = self.expected[(key, customer)]
            assert recorded[customer] == want, f"ledger {key} of {customer}"
            billed = self.fake.meter_event_total(key, customer)
            assert billed == want, f"Stripe bills {billed} {key} to {customer}, recorded {want}"

    def check_seats(self, customer: str) -> None:
        wanted = {"seats": active_members(customer), "licenses": self.licenses.get(customer, 0)}
        for key in LICENSED:
            link = SubscriptionItemLink.objects.get(
                customer_id=customer, metric__key=key, active=True
            )
            stripe = self.fake.subscription_item(self.account.items[key][customer])["quantity"]
            assert (link.quantity, stripe) == (wanted[key], wanted[key]), f"{key} of {customer}"
            assert link.quantity_in_sync

    # -- helpers ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return timezone.now()

    def sync(self, *, apply: bool = False, dry_run: bool = False) -> SyncReport:
        options = ["--settling-window", "0"]
        if apply:
            options.append("--apply")
        if dry_run:
            options.append("--dry-run")
        call_command("billflow_sync", *options, stdout=io.StringIO())
        return SyncReport.objects.order_by("-pk").first()  # type: ignore[return-value]

    def deliver_report(self, delivery: EventDelivery, signature: str) -> None:
        """Post a report; one answered 502 (the endpoint couldn't fetch the event from
        Stripe, and recorded nothing) is delivered again later, as Stripe does."""
        response = self.admin.post(
            WEBHOOK_URL,
            delivery.body,
            content_type="application/json",
            headers={"Stripe-Signature": signature},
        )
        assert response.status_code in (200, 400, 502), (response.status_code, response.content)
        if response.status_code == 502 and delivery not in self.unanswered:
            self.unanswered.append(delivery)

    def admin_action(self, action: str, rows: list[UsageEvent]) -> None:
        response = self.admin.post(
            reverse("admin:billflow_usage_usageevent_changelist"),
            {"action": action, "_selected_action": [str(row.pk) for row in rows]},
        )
        assert response.status_code in (200, 302), response.status_code

    def forget(self, row: UsageEvent) -> None:
        """A row staff cancelled is no longer usage the application recorded."""
        formula = METERED[row.metric.key]
        self.expected[(row.metric.key, row.customer_id)] -= 1 if formula == "count" else row.value

    def ledger_state(self) -> list[tuple[Any, ...]]:
        return list(
            UsageEvent.objects.order_by("pk").values_list("pk", "status", "value", "attempts")
        )

    def fake_client(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            FAKE_STRIPE_API_KEY,
            base_addresses={"api": self.fake.url, "meter_events": self.fake.url},
            max_network_retries=0,
        )
