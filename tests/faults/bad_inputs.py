"""Bad inputs across the public API, settings, admin and Stripe's answers, each with the clear
error it gets: the cases of ``test_bad_inputs.py`` and the table of docs/bad-inputs.md, which
``python -m tests.faults.bad_inputs --markdown`` prints (``--write`` writes it there).

Each case's ``attempt`` runs in a :class:`~tests.faults.scene.Scene`. A ``prepare`` step, when
given, runs first and what it records is part of what must survive the attempt; its result is
``scene.under_test``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import stripe
from django.utils import timezone

import billflow_usage
from billflow_usage.exceptions import (
    IdentifierConflict,
    InvalidUsage,
    UnknownMetric,
    WrongMetricKind,
)
from tests.docs.generated import DOCS, write_table

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

    from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
    from tests.faults.scene import Scene

#: The page whose table ``markdown()`` is.
PAGE = DOCS / "bad-inputs.md"
#: A key the fake Stripe refuses (it only takes test keys); it must never show in a row.
REVOKED_KEY = "sk_live_revoked"


@dataclass(frozen=True)
class Raises:
    """The call raises ``error`` with ``fragment`` in its message."""

    error: type[Exception]
    fragment: str

    def __str__(self) -> str:
        return f"`{self.error.__name__}`: {self.fragment}"


@dataclass(frozen=True)
class Reported:
    """``manage.py check`` reports ``check_id`` with ``fragment`` in its message."""

    check_id: str
    fragment: str

    def __str__(self) -> str:
        return f"`{self.check_id}`: {self.fragment}"


@dataclass(frozen=True)
class FormError:
    """The admin's form shows ``fragment`` on the quantity and saves nothing."""

    fragment: str

    def __str__(self) -> str:
        return f"form error: {self.fragment}"


@dataclass(frozen=True)
class Marked:
    """The ledger row (or seat link) the attempt returns is left ``state``, with ``code`` and
    ``fragment`` in its last error, which never shows the API key."""

    state: str
    code: str
    fragment: str = ""
    subject: str = "row"

    def __str__(self) -> str:
        error = f", `{self.code}`" if self.code else ""
        message = f": {self.fragment}" if self.fragment else ""
        return f"{self.subject} `{self.state}`{error}{message}"


@dataclass(frozen=True)
class Refused:
    """The admin action leaves the rows as they were and says ``fragment``."""

    fragment: str

    def __str__(self) -> str:
        return f"refused: {self.fragment}"


@dataclass(frozen=True)
class BadInput:
    id: str
    area: str
    given: str
    expected: Raises | Reported | FormError | Marked | Refused
    attempt: Callable[[Scene], Any]
    prepare: Callable[[Scene], Any] | None = None


def ahead(minutes: int) -> datetime:
    return timezone.now() + timedelta(minutes=minutes)


def configured(**billflow: Any) -> Callable[[Scene], list[CheckMessage]]:
    """Run the checks with these ``BILLFLOW_USAGE`` keys."""

    def attempt(scene: Scene) -> list[CheckMessage]:
        scene.configure(**billflow)
        return scene.checks()

    return attempt


def declared(api: str, **declaration: Any) -> Callable[[Scene], list[CheckMessage]]:
    """Declare a tracker with ``billflow_usage.<api>(...)``, then run the checks."""

    def attempt(scene: Scene) -> list[CheckMessage]:
        getattr(billflow_usage, api)(**declaration)
        return scene.checks()

    return attempt


ORDERS = {"model": "testapp.Order", "customer": "tests.tracking.helpers.workspace_customer"}


def without_api_key(scene: Scene) -> list[CheckMessage]:
    scene.configure(STRIPE_API_KEY=None)
    scene.settings.STRIPE_TEST_SECRET_KEY = ""
    return scene.checks()


def settings_not_a_dict(scene: Scene) -> list[CheckMessage]:
    scene.settings.BILLFLOW_USAGE = ["BACKEND"]
    return scene.checks()


def bulk_with_one_fraction(scene: Scene) -> object:
    usages = [billflow_usage.Usage(scene.metric, scene.customer, value) for value in (1, 2, 2.5)]
    return billflow_usage.record_usage_bulk(usages)


def save_with_a_broken_customer(scene: Scene) -> UsageEvent:
    """The resolver returns garbage: the save goes through, the tracker keeps a failed row."""
    from billflow_usage.models import UsageEvent
    from tests.testapp.models import Order

    billflow_usage.track("testapp.Order", metric="api_calls", customer=lambda order: "acme")
    order = Order.objects.create(workspace=scene.workspace)
    return UsageEvent.objects.get(source_object_id=str(order.pk))


def count_metric(scene: Scene) -> Metric:
    """A count metric (every event counts one), with its meter in the fake."""
    from billflow_usage.models import Metric

    scene.fake.create_meter("logins", formula="count")
    return Metric.objects.create(key="logins", aggregation=Metric.Aggregation.COUNT)


def in_legacy_mode(scene: Scene, **usage: Any) -> UsageEvent:
    scene.configure(METER_API="legacy")
    return billflow_usage.record_usage(scene.metric, scene.customer, **usage)


def save_tracked(scene: Scene, **tracker: Any) -> UsageEvent:
    """Save an order of the scene's customer under a tracker declared with ``tracker``; the
    row the tracker kept for it."""
    from billflow_usage.models import UsageEvent
    from tests.testapp.models import Order

    billflow_usage.track(
        "testapp.Order", **{"customer": "tests.tracking.helpers.workspace_customer", **tracker}
    )
    scene.workspace.stripe_customer_id = scene.customer
    scene.workspace.save()
    order = Order.objects.create(workspace=scene.workspace)
    return UsageEvent.objects.get(source_object_id=str(order.pk))


def record(scene: Scene, customer: str | None = None) -> UsageEvent:
    return billflow_usage.record_usage(scene.metric, customer or scene.customer, 4)


def record_without_meter(scene: Scene) -> UsageEvent:
    from billflow_usage.models import Metric

    signups = Metric.objects.create(key="signups", event_name="signups")
    return billflow_usage.record_usage(signups, scene.customer, 1)


def deliver_with_revoked_key(scene: Scene) -> UsageEvent:
    scene.configure(STRIPE_API_KEY=REVOKED_KEY)
    return scene.deliver(scene.under_test)


def deliver_without_the_permission(scene: Scene) -> UsageEvent:
    from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY

    scene.fake.keys.deny(FAKE_STRIPE_API_KEY, "/v1/billing/meter_events")
    return scene.deliver(scene.under_test)


def deliver_after_stripe_forgot_the_session(scene: Scene) -> UsageEvent:
    """A v2 session in use, then a restarted Stripe that no longer knows it."""
    from billflow_usage.backends.base import MeterEvent
    from billflow_usage.backends.stripe import StripeBackend
    from billflow_usage.delivery import deliver_pending

    scene.configure(METER_API="v2")
    backend = StripeBackend()
    backend.send_meter_events([MeterEvent("warm-1", "api_calls", scene.customer, 1, ahead(0))])
    scene.fake.forget_sessions()
    deliver_pending(backend=backend, event_ids=[scene.under_test.pk], link_ids=[])
    backend.close()
    scene.under_test.refresh_from_db()
    return scene.under_test


def push_with_revoked_key(scene: Scene) -> SubscriptionItemLink:
    scene.configure(STRIPE_API_KEY=REVOKED_KEY)
    return scene.push(scene.under_test)


def retry_after_a_stored_500(scene: Scene) -> UsageEvent:
    """Stripe stores the 500 under the request's key; the retry must not reuse it."""
    scene.fake.faults.add("stored_error", route="/v1/billing/meter_events", times=1)
    event = scene.deliver(scene.under_test)
    assert event.last_error_code == "http_500"
    time.sleep(0.01)  # past the (test settings') one-millisecond backoff
    return scene.deliver(event)


def legacy_record(scene: Scene) -> UsageEvent:
    """Usage of a new customer whose item is on a meterless metered price (legacy mode)."""
    from billflow_usage.models import SubscriptionItemLink

    customer = str(scene.fake.create_customer()["id"])
    price = scene.fake.create_price(usage_type="metered")
    subscription = scene.fake.create_subscription(customer, price["id"])
    SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=scene.metric,
        stripe_subscription_item_id=subscription["items"]["data"][0]["id"],
    )
    return billflow_usage.record_usage(scene.metric, customer, 6)


def retry_a_usage_record_stored_500_after_effect(scene: Scene) -> UsageEvent:
    """The usage record was made, then Stripe stored a 500: the retry must neither be
    blocked by the stored answer nor count the usage twice."""
    scene.configure(METER_API="legacy")
    scene.fake.faults.add("stored_error_after_effect", route="/v1/subscription_items/*", times=1)
    event = scene.deliver(scene.under_test)
    time.sleep(0.01)
    event = scene.deliver(event)
    assert sum(scene.fake.usage_record_totals.values()) == 6
    return event


def deliver_with_stripe_clock_behind(scene: Scene) -> UsageEvent:
    scene.fake.clock.advance(-3600)
    return scene.deliver(scene.under_test)


def exhaust_retries_on_rate_limits(scene: Scene) -> UsageEvent:
    scene.configure(MAX_ATTEMPTS=2)
    scene.fake.faults.add("status", status=429)
    event = scene.deliver(scene.under_test)
    time.sleep(0.01)  # past the (test settings') one-millisecond backoff
    return scene.deliver(event)


def deliver_while_unreachable(scene: Scene) -> UsageEvent:
    scene.fake.faults.add("outage")
    return scene.deliver(scene.under_test)


def deliver_in_legacy_mode(scene: Scene) -> UsageEvent:
    scene.configure(METER_API="legacy")
    return scene.deliver(scene.under_test)


def record_too_old(scene: Scene) -> UsageEvent:
    """Usage 40 days old: kept, failed, never sent."""
    return billflow_usage.record_usage(
        scene.metric, scene.customer, 3, timestamp=timezone.now() - timedelta(days=40)
    )


def aggregated_and_failed(scene: Scene) -> UsageEvent:
    """Two rows aggregated into one Stripe event that Stripe refused; the first of them."""
    from billflow_usage.delivery import deliver_pending

    scene.configure(AGGREGATION_WINDOW=60)
    window = timezone.now().timestamp() // 60 * 60 - 300
    at = datetime.fromtimestamp(window + 1, tz=UTC)
    rows = [
        billflow_usage.record_usage(scene.metric, "cus_Unknown1", v, timestamp=at) for v in (1, 2)
    ]
    deliver_pending(event_ids=[row.pk for row in rows], link_ids=[])
    rows[0].refresh_from_db()
    assert rows[0].group_id is not None
    assert rows[0].status == "failed"
    return rows[0]


def link_seats(scene: Scene, item_id: str) -> SubscriptionItemLink:
    """Another customer's seats on ``item_id``, 5 wanted."""
    from billflow_usage.models import SubscriptionItemLink

    customer = str(scene.fake.create_customer()["id"])
    SubscriptionItemLink.objects.create(
        customer_id=customer, metric=scene.seats, stripe_subscription_item_id=item_id
    )
    return billflow_usage.set_quantity(scene.seats, customer, 5)


def licensed_item(scene: Scene) -> str:
    """A new subscription item on a seat price."""
    subscription = scene.fake.create_subscription(scene.customer, scene.fake.create_price()["id"])
    return str(subscription["items"]["data"][0]["id"])


def seats_on_a_metered_item(scene: Scene) -> SubscriptionItemLink:
    meter = scene.fake.create_meter("storage")
    price = scene.fake.create_price(meter=meter["id"])
    subscription = scene.fake.create_subscription(scene.customer, price["id"])
    return link_seats(scene, subscription["items"]["data"][0]["id"])


def edit_a_counted_quantity(scene: Scene) -> list[str]:
    """Staff edit seats that a ``track_quantity`` tracker counts."""
    billflow_usage.track_quantity(
        "testapp.Member",
        metric="seats",
        customer="tests.tracking.helpers.workspace_customer",
        quantity="tests.tracking.helpers.active_members",
    )
    return scene.post_quantity(scene.seat_link, "9")


def recorded_before_the_identifier_rule(scene: Scene) -> UsageEvent:
    """A pending row an older version stored with an identifier no header can carry."""
    from billflow_usage.models import UsageEvent

    return UsageEvent.objects.create(
        metric=scene.metric, customer_id=scene.customer, value=2, identifier="price-€"
    )


def leaking_customer(order: object) -> str:
    raise ConnectionError("CRM at postgres://crm:hunter2@crm.internal/db refused sk_live_abc123")


def send_elsewhere_first(scene: Scene) -> UsageEvent:
    """Another system already sent an event under this identifier."""
    client = stripe.StripeClient("sk_test_another_system", base_addresses={"api": scene.fake.url})
    client.v1.billing.meter_events.create(
        {
            "event_name": "api_calls",
            "identifier": "shared-1",
            "payload": {"stripe_customer_id": scene.customer, "value": "9"},
        }
    )
    return scene.deliver(scene.under_test)


CASES = [
    # -- record_usage ---------------------------------------------------------------------
    BadInput(
        "value-bool",
        "record_usage",
        "value `True`",
        Raises(InvalidUsage, "value must be a whole number, not a bool (True)"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, True),
    ),
    BadInput(
        "value-fraction",
        "record_usage",
        "value `2.5`",
        Raises(InvalidUsage, "got 2.5 with a fractional part; Stripe bills whole units"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, 2.5),
    ),
    BadInput(
        "value-nan",
        "record_usage",
        "value `float('nan')`",
        Raises(InvalidUsage, "value must be a finite whole number, got nan; pass an int"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, float("nan")),
    ),
    BadInput(
        "value-text",
        "record_usage",
        "value `'3'` (text)",
        Raises(InvalidUsage, "value must be a whole number, got str '3'"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, "3"),
    ),
    BadInput(
        "value-16-digits",
        "record_usage",
        "value `10**15` (16 digits)",
        Raises(InvalidUsage, "has more than 15 digits, which Stripe rejects"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, 10**15),
    ),
    BadInput(
        "value-decimal-1e1000000",
        "record_usage",
        'value `Decimal("1e1000000")` (converting it would take minutes)',
        Raises(InvalidUsage, "value (a number of 1000001 digits) has more than 15 digits"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, Decimal("1e1000000")),
    ),
    BadInput(
        "value-int-5001-digits",
        "record_usage",
        "value `10**5000` (too long for `str()`)",
        Raises(InvalidUsage, "value (a whole number of about 5001 digits) has more than 15"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, 10**5000),
    ),
    BadInput(
        "value-object",
        "record_usage",
        "value `[3]` (neither its `repr()` nor `__int__` is called)",
        Raises(InvalidUsage, "value must be a whole number, got list object"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, [3]),
    ),
    BadInput(
        "customer-not-an-id",
        "record_usage",
        "customer `'acme'`",
        Raises(InvalidUsage, "customer ID 'acme' is not a Stripe customer ID"),
        lambda s: billflow_usage.record_usage(s.metric, "acme"),
    ),
    BadInput(
        "customer-wrong-type",
        "record_usage",
        "customer `42`",
        Raises(InvalidUsage, "customer must be a Stripe customer ID ('cus_...'), a dj-stripe"),
        lambda s: billflow_usage.record_usage(s.metric, 42),
    ),
    BadInput(
        "subscriber-without-customer",
        "record_usage",
        "a workspace (the subscriber model) with no dj-stripe Customer",
        Raises(InvalidUsage, "has no dj-stripe Customer in test mode"),
        lambda s: billflow_usage.record_usage(s.metric, s.workspace),
    ),
    BadInput(
        "metric-unknown",
        "record_usage",
        "metric `'api-cals'` (a typo)",
        Raises(UnknownMetric, "No metric with key 'api-cals'. Create it first"),
        lambda s: billflow_usage.record_usage("api-cals", s.customer),
    ),
    BadInput(
        "metric-licensed",
        "record_usage",
        "a licensed (seat) metric",
        Raises(WrongMetricKind, "is licensed: use set_quantity() for it"),
        lambda s: billflow_usage.record_usage(s.seats, s.customer),
    ),
    BadInput(
        "identifier-empty",
        "record_usage",
        "identifier `''`",
        Raises(InvalidUsage, "identifier must not be empty; omit it to have one generated"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, identifier=""),
    ),
    BadInput(
        "identifier-too-long",
        "record_usage",
        "identifier of 101 characters",
        Raises(InvalidUsage, "Stripe allows at most 100"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, identifier="x" * 101),
    ),
    BadInput(
        "identifier-non-ascii",
        "record_usage",
        "identifier `'price-€'`",
        Raises(InvalidUsage, r"has '\u20ac' (EURO SIGN) at position 6; an identifier may only"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, identifier="price-€"),
    ),
    BadInput(
        "identifier-nul",
        "record_usage",
        "identifier `'a\\x00b'` (PostgreSQL can't store a NUL)",
        Raises(InvalidUsage, "has '\\x00' at position 1; an identifier may only contain letters"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, identifier="a\x00b"),
    ),
    BadInput(
        "identifier-reserved",
        "record_usage",
        "identifier `'bft_order-1'` (a prefix the library makes identifiers under)",
        Raises(InvalidUsage, "starts with 'bft_', which billflow_usage reserves"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, identifier="bft_order-1"),
    ),
    BadInput(
        "value-negative-count",
        "record_usage",
        "value `-1` on a count metric",
        Raises(InvalidUsage, "can't take back usage with a negative event: cancel the event"),
        lambda s: billflow_usage.record_usage(s.under_test, s.customer, -1),
        prepare=count_metric,
    ),
    BadInput(
        "value-several-count",
        "record_usage",
        "value `5` on a count metric",
        Raises(InvalidUsage, "counts this event as one, whatever its value"),
        lambda s: billflow_usage.record_usage(s.under_test, s.customer, 5),
        prepare=count_metric,
    ),
    BadInput(
        "legacy-negative",
        "record_usage",
        "value `-3` with `METER_API='legacy'`",
        Raises(InvalidUsage, "legacy usage records can't be negative"),
        lambda s: in_legacy_mode(s, value=-3),
    ),
    BadInput(
        "legacy-future",
        "record_usage",
        "a timestamp 2 minutes ahead with `METER_API='legacy'`",
        Raises(InvalidUsage, "legacy usage records can't be in the future"),
        lambda s: in_legacy_mode(s, timestamp=ahead(2)),
    ),
    BadInput(
        "identifier-reused",
        "record_usage",
        "identifier `'order-1'` again with another value",
        Raises(IdentifierConflict, "identifier 'order-1' is already recorded as 11"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, 12, identifier="order-1"),
    ),
    BadInput(
        "timestamp-naive",
        "record_usage",
        "a naive timestamp",
        Raises(InvalidUsage, "is naive (no timezone)"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, timestamp=datetime.now()),
    ),
    BadInput(
        "timestamp-future",
        "record_usage",
        "a timestamp 10 minutes ahead",
        Raises(InvalidUsage, "is more than 5 minutes in the future"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, timestamp=ahead(10)),
    ),
    BadInput(
        "timestamp-text",
        "record_usage",
        "timestamp `'2025-01-01'` (text)",
        Raises(InvalidUsage, "got str '2025-01-01'; pass one such as django.utils.timezone.now()"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, timestamp="2025-01-01"),
    ),
    BadInput(
        "source-unsaved",
        "record_usage",
        "an unsaved model instance as source",
        Raises(InvalidUsage, "source must be a saved model instance"),
        lambda s: billflow_usage.record_usage(s.metric, s.customer, source=type(s.workspace)()),
    ),
    # -- record_usage_bulk / set_quantity ------------------------------------------------
    BadInput(
        "bulk-one-bad-item",
        "record_usage_bulk",
        "three usages, the third with value `2.5`",
        Raises(InvalidUsage, "usage #2: value must be a whole number, got 2.5"),
        bulk_with_one_fraction,
    ),
    BadInput(
        "bulk-unknown-key",
        "record_usage_bulk",
        "a mapping with key `amount`",
        Raises(InvalidUsage, "unexpected keyword argument 'amount'; pass Usage(...) objects"),
        lambda s: billflow_usage.record_usage_bulk([{"metric": s.metric, "amount": 3}]),
    ),
    BadInput(
        "bulk-identifier-reserved",
        "record_usage_bulk",
        "a usage with identifier `'bfug_1'`",
        Raises(InvalidUsage, "usage #0: identifier 'bfug_1' starts with 'bfug_'"),
        lambda s: billflow_usage.record_usage_bulk(
            [billflow_usage.Usage(s.metric, s.customer, identifier="bfug_1")]
        ),
    ),
    BadInput(
        "bulk-identifier-line-separator",
        "record_usage_bulk",
        "a usage with identifier `'a\\u2028b'` (U+2028)",
        Raises(InvalidUsage, "usage #0: identifier 'a\\u2028b' has '\\u2028' (LINE SEPARATOR)"),
        lambda s: billflow_usage.record_usage_bulk(
            [billflow_usage.Usage(s.metric, s.customer, identifier="a\u2028b")]
        ),
    ),
    BadInput(
        "quantity-huge",
        "set_quantity",
        'quantity `Decimal("-1e999999")`',
        Raises(InvalidUsage, "quantity (a number of 1000000 digits) has more than 15 digits"),
        lambda s: billflow_usage.set_quantity(s.seats, s.customer, Decimal("-1e999999")),
    ),
    BadInput(
        "quantity-negative",
        "set_quantity",
        "quantity `-1`",
        Raises(InvalidUsage, "quantity must be at least 0, got -1"),
        lambda s: billflow_usage.set_quantity(s.seats, s.customer, -1),
    ),
    BadInput(
        "quantity-text",
        "set_quantity",
        "quantity `'12'` (text)",
        Raises(InvalidUsage, "quantity must be a whole number, got str '12'"),
        lambda s: billflow_usage.set_quantity(s.seats, s.customer, "12"),
    ),
    BadInput(
        "quantity-metered",
        "set_quantity",
        "a metered metric",
        Raises(WrongMetricKind, "is metered: use record_usage() for it, not set_quantity()"),
        lambda s: billflow_usage.set_quantity(s.metric, s.customer, 3),
    ),
    # -- trackers ------------------------------------------------------------------------
    BadInput(
        "track-on-typo",
        "track",
        "`on=('created',)`",
        Reported("billflow_usage.E103", "names no action or unknown ones ('created')"),
        declared("track", **ORDERS, metric="api_calls", on=("created",)),
    ),
    BadInput(
        "track-unknown-metric",
        "track",
        "`metric='api-cals'`",
        Reported("billflow_usage.E101", "no metric has the key 'api-cals'"),
        declared("track", **ORDERS, metric="api-cals"),
    ),
    BadInput(
        "track-licensed-metric",
        "track",
        "a licensed metric",
        Reported("billflow_usage.E102", "metric 'seats' is licensed"),
        declared("track", **ORDERS, metric="seats"),
    ),
    BadInput(
        "track_quantity-metered-metric",
        "track_quantity",
        "a metered metric",
        Reported("billflow_usage.E102", "metric 'api_calls' is metered"),
        declared(
            "track_quantity",
            model="testapp.Member",
            metric="api_calls",
            customer="tests.tracking.helpers.workspace_customer",
            quantity="tests.tracking.helpers.active_members",
        ),
    ),
    BadInput(
        "track-missing-function",
        "track",
        "`customer='tests.nowhere.customer_of'`",
        Reported("billflow_usage.E104", "can't be called: No module named 'tests.nowhere'"),
        declared(
            "track", **{**ORDERS, "customer": "tests.nowhere.customer_of"}, metric="api_calls"
        ),
    ),
    BadInput(
        "track-unknown-model",
        "track",
        "model `'testapp.Invoice'`",
        Reported("billflow_usage.E105", "is not an installed model, so nothing is tracked"),
        declared("track", **{**ORDERS, "model": "testapp.Invoice"}, metric="api_calls"),
    ),
    BadInput(
        "track-delta-not-numeric",
        "track",
        "`delta='workspace'` (a foreign key)",
        Reported("billflow_usage.E106", "delta='workspace' names a ForeignKey, not a numeric"),
        declared("track", **ORDERS, metric="api_calls", delta="workspace"),
    ),
    BadInput(
        "track-value-fraction",
        "track",
        "`value=2.5`",
        Reported("billflow_usage.E107", "got 2.5 with a fractional part"),
        declared("track", **ORDERS, metric="api_calls", value=2.5),
    ),
    BadInput(
        "track-count-value",
        "track",
        "`value=5` on a count metric",
        Reported("billflow_usage.E109", "is a count metric, which counts every event as one"),
        declared("track", **ORDERS, metric="logins", value=5),
        prepare=count_metric,
    ),
    BadInput(
        "track-metric-missing-at-save",
        "track (at save)",
        "`metric='api-cals'` (a typo) on a save",
        Marked("failed", "unknown_metric", "No metric with key 'api-cals'"),
        lambda s: save_tracked(s, metric="api-cals"),
    ),
    BadInput(
        "track-identifier-reserved",
        "track (at save)",
        "an `identifier` function returning `'bft_7'`",
        Marked("failed", "tracker_error", "starts with 'bft_', which billflow_usage reserves"),
        lambda s: save_tracked(s, metric="api_calls", identifier=lambda order: "bft_7"),
    ),
    BadInput(
        "track-count-negative",
        "track (at save)",
        "`value=-1` on a count metric",
        Marked("failed", "tracker_error", "cancel the event instead"),
        lambda s: save_tracked(s, metric="logins", value=-1),
        prepare=count_metric,
    ),
    BadInput(
        "track-value-huge",
        "track (at save)",
        "a value function returning `10**5000`",
        Marked("failed", "tracker_error", "(a whole number of about 5001 digits) has more"),
        lambda s: save_tracked(s, metric="api_calls", value=lambda order: 10**5000),
    ),
    BadInput(
        "track-identifier-non-ascii",
        "track (at save)",
        "an `identifier` function returning `'€7'`",
        Marked("failed", "tracker_error", "an identifier may only contain letters, digits"),
        lambda s: save_tracked(s, metric="api_calls", identifier=lambda order: "€7"),
    ),
    BadInput(
        "track-resolver-leaks-secrets",
        "track (at save)",
        "a customer function raising with a DSN password and an API key in its message",
        Marked(
            "failed",
            "tracker_error",
            "ConnectionError: CRM at postgres://crm:***@crm.internal/db refused sk_live_***",
        ),
        lambda s: save_tracked(s, metric="api_calls", customer=leaking_customer),
    ),
    BadInput(
        "track-customer-garbage",
        "track (at save)",
        "a customer function returning `'acme'`",
        Marked("failed", "tracker_error", "customer ID 'acme' is not a Stripe customer ID"),
        save_with_a_broken_customer,
    ),
    # -- settings --------------------------------------------------------------------------
    BadInput(
        "settings-backend",
        "settings",
        "`BACKEND='billflow_usage.backends.nope.Backend'`",
        Reported("billflow_usage.E001", "cannot be imported: No module named"),
        configured(BACKEND="billflow_usage.backends.nope.Backend"),
    ),
    BadInput(
        "settings-meter-api",
        "settings",
        "`METER_API='v3'`",
        Reported("billflow_usage.E002", "'v3' is not one of v1, v2, legacy"),
        configured(METER_API="v3"),
    ),
    BadInput(
        "settings-delivery",
        "settings",
        "`DELIVERY='cron'`",
        Reported("billflow_usage.E003", "'cron' is not one of on_commit, worker, celery"),
        configured(DELIVERY="cron"),
    ),
    BadInput(
        "settings-no-key",
        "settings",
        "the Stripe backend with no API key anywhere",
        Reported("billflow_usage.E004", "The Stripe backend has no API key"),
        without_api_key,
    ),
    BadInput(
        "settings-batch-size-text",
        "settings",
        "`BATCH_SIZE='500'`",
        Reported("billflow_usage.E005", "['BATCH_SIZE'] = '500' is malformed"),
        configured(BATCH_SIZE="500"),
    ),
    BadInput(
        "settings-seat-rate",
        "settings",
        "`SEAT_UPDATES_PER_HOUR=500` (Stripe allows 200)",
        Reported("billflow_usage.E005", "['SEAT_UPDATES_PER_HOUR'] = 500 is malformed"),
        configured(SEAT_UPDATES_PER_HOUR=500),
    ),
    BadInput(
        "settings-retry-bounds",
        "settings",
        "`RETRY_BASE_DELAY=60`, `RETRY_MAX_DELAY=10`",
        Reported("billflow_usage.E005", "RETRY_BASE_DELAY'] (60) is larger than RETRY_MAX_DELAY"),
        configured(RETRY_BASE_DELAY=60, RETRY_MAX_DELAY=10),
    ),
    BadInput(
        "settings-not-a-dict",
        "settings",
        "`BILLFLOW_USAGE = ['BACKEND']`",
        Reported("billflow_usage.E006", "BILLFLOW_USAGE must be a dict, got list"),
        settings_not_a_dict,
    ),
    BadInput(
        "settings-trackers-path",
        "settings",
        "`TRACKERS=['tests.nowhere.declare']`",
        Reported("billflow_usage.E108", "'tests.nowhere.declare' can't be used"),
        configured(TRACKERS=["tests.nowhere.declare"]),
    ),
    BadInput(
        "settings-typo",
        "settings",
        "`BATCHSIZE=100` (a typo)",
        Reported("billflow_usage.W001", "['BATCHSIZE'] is not a setting of billflow_usage"),
        configured(BATCHSIZE=100),
    ),
    # -- admin -----------------------------------------------------------------------------
    BadInput(
        "admin-quantity-negative",
        "admin",
        "seat quantity `-1`",
        FormError("Ensure this value is greater than or equal to 0."),
        lambda s: s.post_quantity(s.seat_link, "-1"),
    ),
    BadInput(
        "admin-quantity-text",
        "admin",
        "seat quantity `ten`",
        FormError("Enter a whole number."),
        lambda s: s.post_quantity(s.seat_link, "ten"),
    ),
    BadInput(
        "admin-quantity-metered",
        "admin",
        "a quantity on a metered item",
        FormError("Quantity only applies to licensed (per-seat) metrics; api_calls is metered"),
        lambda s: s.post_quantity(s.metered_link, "4"),
    ),
    BadInput(
        "admin-quantity-tracker-owned",
        "admin",
        "a seat quantity a `track_quantity` tracker counts",
        FormError("is counted by track_quantity(testapp.Member, metric='seats')"),
        edit_a_counted_quantity,
    ),
    BadInput(
        "admin-retry-tracker-error",
        "admin",
        "Retry on a row its tracker kept failed (`tracker_error`)",
        Refused(
            "Fix the cause, then record each one with record_usage(), as its error message says"
        ),
        lambda s: s.retry(s.under_test),
        prepare=save_with_a_broken_customer,
    ),
    BadInput(
        "admin-retry-too-old",
        "admin",
        "Retry on a row older than Stripe's 35 days",
        Refused("Bill them with an invoice item or a credit note instead"),
        lambda s: s.retry(s.under_test),
        prepare=record_too_old,
    ),
    BadInput(
        "admin-retry-part-of-a-group",
        "admin",
        "Retry on one of the rows aggregated into one Stripe event",
        Refused("which can only be retried as a whole: search the ledger for bfug_"),
        lambda s: s.retry(s.under_test),
        prepare=aggregated_and_failed,
    ),
    # -- Stripe's answers --------------------------------------------------------------------
    BadInput(
        "stripe-no-meter",
        "Stripe",
        "usage of a metric with no meter in Stripe",
        Marked("failed", "no_meter", "No active meter was found for event_name 'signups'"),
        lambda s: s.deliver(s.under_test),
        prepare=record_without_meter,
    ),
    BadInput(
        "stripe-unknown-customer",
        "Stripe",
        "a customer ID Stripe doesn't know",
        Marked("failed", "meter_event_customer_not_found", "No such customer: 'cus_Unknown0'"),
        lambda s: s.deliver(s.under_test),
        prepare=lambda s: record(s, "cus_Unknown0"),
    ),
    BadInput(
        "stripe-key-refused",
        "Stripe",
        "an API key Stripe refuses (401): the row waits, using up no attempt",
        Marked("pending", "credentials_rejected", "Invalid API Key provided: sk_live_****oked"),
        deliver_with_revoked_key,
        prepare=record,
    ),
    BadInput(
        "stripe-key-lacks-permission",
        "Stripe",
        "a restricted key without the permission (403): the row waits",
        Marked("pending", "permission_denied", "'rak_billing_meter_event_write' permission"),
        deliver_without_the_permission,
        prepare=record,
    ),
    BadInput(
        "stripe-session-forgotten",
        "Stripe",
        "a v2 session Stripe forgot (restarted): renewed at once, delivered",
        Marked("sent", ""),
        deliver_after_stripe_forgot_the_session,
        prepare=record,
    ),
    BadInput(
        "stripe-seat-key-refused",
        "Stripe",
        "a seat push with an API key Stripe refuses (401)",
        Marked("push pending", "credentials_rejected", "STRIPE_API_KEY", subject="seat link"),
        push_with_revoked_key,
        prepare=lambda s: link_seats(s, licensed_item(s)),
    ),
    BadInput(
        "stripe-stored-500",
        "Stripe",
        "a 500 Stripe stored under the request's idempotency key: the retry uses a new key",
        Marked("sent", ""),
        retry_after_a_stored_500,
        prepare=record,
    ),
    BadInput(
        "stripe-usage-record-500-after-effect",
        "Stripe",
        "legacy: a usage record made, then a 500 stored: sent again, counted once",
        Marked("sent", ""),
        retry_a_usage_record_stored_500_after_effect,
        prepare=legacy_record,
    ),
    BadInput(
        "stripe-clock-skew",
        "Stripe",
        "our clock an hour ahead of Stripe's",
        Marked("failed", "timestamp_in_future", "it may be at most 5 minutes ahead"),
        deliver_with_stripe_clock_behind,
        prepare=record,
    ),
    BadInput(
        "stripe-rate-limit-exhausted",
        "Stripe",
        "429 on every attempt, `MAX_ATTEMPTS=2`",
        Marked("failed", "rate_limit", "Gave up after 2 attempts (MAX_ATTEMPTS)"),
        exhaust_retries_on_rate_limits,
        prepare=record,
    ),
    BadInput(
        "stripe-unreachable",
        "Stripe",
        "Stripe unreachable (connection closed)",
        Marked("pending", "api_connection_error", "Unexpected error communicating with Stripe"),
        deliver_while_unreachable,
        prepare=record,
    ),
    BadInput(
        "stripe-identifier-taken",
        "Stripe",
        "an identifier Stripe already has (another system sent it): counts as delivered",
        Marked("sent", ""),
        send_elsewhere_first,
        prepare=lambda s: billflow_usage.record_usage(s.metric, s.customer, identifier="shared-1"),
    ),
    BadInput(
        "stripe-identifier-recorded-before-the-rule",
        "Stripe",
        "a pending row stored before the rule with identifier `'price-€'`: sent (v1 key hashed)",
        Marked("sent", ""),
        lambda s: s.deliver(s.under_test),
        prepare=recorded_before_the_identifier_rule,
    ),
    BadInput(
        "stripe-legacy-no-item",
        "Stripe",
        "legacy mode, the customer's subscription item unknown",
        Marked("pending", "no_subscription_item", "run manage.py billflow_sync"),
        deliver_in_legacy_mode,
        prepare=lambda s: record(s, str(s.fake.create_customer()["id"])),
    ),
    BadInput(
        "stripe-legacy-negative",
        "Stripe",
        "legacy mode, a negative row recorded before switching to it",
        Marked("failed", "usage_record_negative", "Legacy usage records can't be negative"),
        deliver_in_legacy_mode,
        prepare=lambda s: billflow_usage.record_usage(s.metric, s.customer, -3),
    ),
    BadInput(
        "stripe-legacy-future",
        "Stripe",
        "legacy mode, a row timestamped 4 minutes ahead recorded before switching to it",
        Marked("pending", "usage_record_in_future", "retried once its time has come"),
        deliver_in_legacy_mode,
        prepare=lambda s: billflow_usage.record_usage(s.metric, s.customer, timestamp=ahead(4)),
    ),
    BadInput(
        "stripe-seat-item-missing",
        "Stripe",
        "a seat push to a subscription item Stripe doesn't have",
        Marked(
            "push pending",
            "resource_missing",
            "No such subscription_item: 'si_Gone0'",
            subject="seat link",
        ),
        lambda s: s.push(s.under_test),
        prepare=lambda s: link_seats(s, "si_Gone0"),
    ),
    BadInput(
        "stripe-seats-on-metered-item",
        "Stripe",
        "a seat push to a metered price's item",
        Marked("push pending", "http_400", "Quantity should not be specified", "seat link"),
        lambda s: s.push(s.under_test),
        prepare=seats_on_a_metered_item,
    ),
]


def markdown() -> str:
    """The table of docs/bad-inputs.md."""
    lines = ["| # | area | input | what you get |", "|---|---|---|---|"]
    for number, case in enumerate(CASES, start=1):
        cells = [str(number), case.area, case.given, str(case.expected)]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the docs' table")
    parser.add_argument("--write", action="store_true", help="and write it into " + str(PAGE))
    arguments = parser.parse_args()
    if arguments.markdown:
        print(markdown())
        if arguments.write:
            write_table(PAGE, "tests.faults.bad_inputs", markdown())
    else:
        parser.print_help()
