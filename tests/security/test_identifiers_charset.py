"""Identifiers are 1-100 characters a header and Stripe take: refused otherwise at
``record_usage`` (before the database), and rows recorded before the rule still deliver."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction
from django.utils import timezone

import billflow_usage
from billflow_usage import validation
from billflow_usage.backends.base import Cancellation, MeterEvent, Outcome
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.delivery import deliver_pending
from billflow_usage.exceptions import InvalidUsage, UnknownMetric
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.delivery.conftest import Configure
from tests.factories import OrderFactory
from tests.testapp.models import Order, Workspace
from tests.tracking.helpers import workspace_customer

ALLOWED_HINT = "letters, digits and - _ . : / @ # + = ~ |"

#: Each refused for what it is: outside printable ASCII, or a character a header or a
#: log line would read as structure (space, quote, comma, backslash, angle bracket).
REFUSED = [
    "price-€",  # not Latin-1: requests can't put it in a header
    "line\u2028break",  # U+2028 LINE SEPARATOR
    "nul\x00byte",  # PostgreSQL text can't hold it
    "new\nline",
    "carriage\rreturn",
    "tab\there",
    "two words",
    " leading",
    "trailing ",
    "café",  # Latin-1, but not ASCII
    "\ufeffbom",
    'quote"d',
    "comma,separated",
    "back\\slash",
    "<script>",
    "\x7f",  # DEL
    "\ud800",  # a lone surrogate: no UTF-8 for it
]

ACCEPTED = [
    "order-42",
    "order-42:create",
    str(uuid.uuid4()),
    "urn:shop:order:42",
    "tenant/7/order@2026-12-01T00:00:00.000+00:00",
    "auth0|5f7c8ec7c33c6c004bbafe82",
    "aGVsbG8+d29ybGQ=",  # base64
    "a_b.c~d#e",
    "x" * 100,
]


@pytest.mark.parametrize("good", ACCEPTED)
def test_identifiers_of_the_allowed_characters_are_kept(good: str) -> None:
    assert validation.identifier(good) == good


@pytest.mark.parametrize("bad", REFUSED, ids=ascii)
def test_other_characters_are_refused_saying_which_and_what_is_allowed(bad: str) -> None:
    with pytest.raises(InvalidUsage) as raised:
        validation.identifier(bad)

    message = str(raised.value)
    assert ALLOWED_HINT in message
    assert "position" in message
    # The message is ASCII itself (safe in any log or header), so the character is escaped.
    assert message.isascii()


def test_what_is_checked_is_what_is_stored() -> None:
    """A str subclass can't pass one text to the check and give another afterwards."""

    class Shifty(str):
        def __str__(self) -> str:
            return "bfu_\u20ac"

    checked = validation.identifier(Shifty("order-1"))

    assert (checked, type(checked)) == ("order-1", str)


def test_a_long_bad_identifier_is_named_by_its_start_only() -> None:
    with pytest.raises(InvalidUsage) as raised:
        validation.identifier("é" * 1_000_000)

    assert "1000000 characters" in str(raised.value)
    assert len(str(raised.value)) < 400


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["price-€", "line\u2028break", "nul\x00byte"], ids=ascii)
def test_record_usage_refuses_them_and_records_nothing(metric: Metric, bad: str) -> None:
    with pytest.raises(InvalidUsage, match="identifier"):
        billflow_usage.record_usage(metric, "cus_A1", 1, identifier=bad)

    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_record_usage_bulk_names_the_item(metric: Metric) -> None:
    usages = [
        billflow_usage.Usage(metric, "cus_A1", 1, identifier="ok-1"),
        billflow_usage.Usage(metric, "cus_A1", 1, identifier="price-€"),
    ]

    with pytest.raises(InvalidUsage, match=r"usage #1: identifier 'price-\\u20ac'"):
        billflow_usage.record_usage_bulk(usages)

    assert not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_a_trackers_own_key_with_other_characters_keeps_a_failed_row(
    tracker_registry, metric: Metric
) -> None:
    tracker_registry.track(
        Order, metric=metric.key, customer=workspace_customer, identifier=lambda o: f"€{o.pk}"
    )

    order = OrderFactory()

    assert Order.objects.filter(pk=order.pk).exists()  # the host's save went through
    [row] = UsageEvent.objects.all()
    assert (row.status, row.last_error_code, row.source) == ("failed", "tracker_error", order)
    assert ALLOWED_HINT in row.last_error_message


@pytest.mark.django_db
def test_a_nul_is_refused_before_the_database_and_the_transaction_goes_on(
    metric: Metric,
) -> None:
    """On PostgreSQL a NUL in a text parameter fails the statement (psycopg refuses it);
    refused first, nothing reaches the database, on SQLite as on PostgreSQL."""
    with transaction.atomic():
        with pytest.raises(InvalidUsage):
            billflow_usage.record_usage(metric, "cus_A1", 1, identifier="a\x00b")
        with pytest.raises(InvalidUsage):
            billflow_usage.record_usage(metric, "cus_A1\x00", 1)
        with pytest.raises(UnknownMetric, match="No metric with key"):
            billflow_usage.record_usage("orders\x00", "cus_A1", 1)
        with pytest.raises(UnknownMetric, match="No metric with key"):
            billflow_usage.set_quantity("seats\x00", "cus_A1", 1)
        Workspace.objects.create(name="after the refusals")  # the transaction still works
        billflow_usage.record_usage(metric, "cus_A1", 1, identifier="after-nul")

    assert list(UsageEvent.objects.values_list("identifier", flat=True)) == ["after-nul"]


def test_the_nul_refusal_runs_on_postgresql_too(on_postgresql: None, metric: Metric) -> None:
    """The same as above, on PostgreSQL (skipped on SQLite): psycopg never sees the NUL."""
    assert connection.vendor == "postgresql"
    test_a_nul_is_refused_before_the_database_and_the_transaction_goes_on(metric)


# -- rows recorded before the rule ---------------------------------------------------------

#: Identifiers an older version let through; ``\x00`` only where the database can hold it.
OLD_IDENTIFIERS = ["price-€", "line\u2028break", "two words", "café"]


def old_row(metric: Metric, customer: str, identifier: str, value: int = 3) -> UsageEvent:
    """A pending row stored by a version without the rule (no validation on the way)."""
    return UsageEvent.objects.create(
        metric=metric, customer_id=customer, value=value, identifier=identifier
    )


@pytest.mark.django_db
@pytest.mark.parametrize("meter_api", ["v1", "v2"])
@pytest.mark.parametrize("identifier", OLD_IDENTIFIERS, ids=ascii)
def test_rows_recorded_before_the_rule_are_delivered_not_retried_as_an_outage(
    fake_stripe: FakeStripe,
    configure: Configure,
    api_calls: Metric,
    customer: str,
    meter_api: str,
    identifier: str,
) -> None:
    """Their identifier goes in the request's body as it is; the v1 ``Idempotency-Key``
    header, which can only carry printable ASCII, takes a hash of it instead."""
    configure(METER_API=meter_api)
    row = old_row(api_calls, customer, identifier)

    stats = deliver_pending()

    row.refresh_from_db()
    assert (row.status, row.last_error_code) == ("sent", ""), row.last_error_message
    assert stats.delivered == 1
    assert [e["identifier"] for e in fake_stripe.meter_events("api_calls", customer)] == [
        identifier
    ]
    assert fake_stripe.meter_event_total("api_calls", customer) == 3


@pytest.mark.django_db
def test_an_old_row_with_a_nul_is_delivered_where_the_database_kept_it(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL can't have stored it")
    configure(METER_API="v1")
    row = old_row(api_calls, customer, "nul\x00byte")

    deliver_pending()

    row.refresh_from_db()
    assert (row.status, row.last_error_code) == ("sent", ""), row.last_error_message


@pytest.mark.django_db
def test_a_redo_after_a_crash_repeats_the_same_hashed_key(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    """The key stays deterministic: a crash between send and mark repeats the request and
    Stripe counts it once."""
    configure(METER_API="v1")
    event = MeterEvent("price-€", "api_calls", customer, 5, timezone.now())
    backend = StripeBackend()
    try:
        first = backend.send_meter_events([event])
        again = backend.send_meter_events([event])
    finally:
        backend.close()

    assert [r.outcome for r in first + again] == [Outcome.DELIVERED, Outcome.DELIVERED]
    assert fake_stripe.meter_event_total("api_calls", customer) == 5


@pytest.mark.django_db
def test_an_old_row_can_be_cancelled(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    """Cancelling puts the identifier in its key too (the admin's cancel action)."""
    configure(METER_API="v1")
    old_row(api_calls, customer, "price-€")
    deliver_pending()
    backend = StripeBackend()
    try:
        result = backend.cancel_meter_event(Cancellation("api_calls", "price-€"))
    finally:
        backend.close()

    assert (result.outcome, result.code) == (Outcome.DELIVERED, ""), result.message
    assert fake_stripe.meter_event_total("api_calls", customer) == 0


@pytest.mark.django_db
def test_old_rows_in_legacy_mode_are_not_an_outage_either(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric
) -> None:
    from billflow_usage.models import SubscriptionItemLink

    configure(METER_API="legacy")
    customer = str(fake_stripe.create_customer()["id"])
    price = fake_stripe.create_price(usage_type="metered")
    subscription = fake_stripe.create_subscription(customer, price["id"])
    SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=api_calls,
        stripe_subscription_item_id=subscription["items"]["data"][0]["id"],
    )
    row = old_row(api_calls, customer, "price-€", value=6)

    deliver_pending()

    row.refresh_from_db()
    assert (row.status, row.last_error_code) == ("sent", ""), row.last_error_message
    assert sum(fake_stripe.usage_record_totals.values()) == 6
