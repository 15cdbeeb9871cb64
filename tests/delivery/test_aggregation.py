"""AGGREGATION_WINDOW: events of one customer and sum metric in one window are sent as one
Stripe event whose identifier is stored in a DeliveryGroup before it is sent."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

import billflow_usage
from billflow_usage.backends import get_backend
from billflow_usage.backends.base import MeterEvent
from billflow_usage.delivery import deliver_pending
from billflow_usage.delivery.aggregation import group_identifier
from billflow_usage.delivery.claim import claim_events
from billflow_usage.models import DeliveryGroup, Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from tests.delivery.conftest import Configure, expire_claims, make_due
from tests.factories import MetricFactory

pytestmark = pytest.mark.django_db

WINDOW = 60


@pytest.fixture(autouse=True)
def aggregate(configure: Configure) -> None:
    configure(METER_API="v1", AGGREGATION_WINDOW=WINDOW)


def in_closed_window(minutes_ago: int = 5) -> datetime:
    """A moment inside a window that has already closed."""
    now = timezone.now()
    start = now.timestamp() // WINDOW * WINDOW - minutes_ago * 60
    return datetime.fromtimestamp(start + 1, tz=now.tzinfo)


def record(
    customer: str, values: list[int], at: datetime, metric: str = "api_calls"
) -> list[UsageEvent]:
    return billflow_usage.record_usage_bulk(
        billflow_usage.Usage(metric, customer, value, timestamp=at + timedelta(seconds=i))
        for i, value in enumerate(values)
    )


def test_one_window_becomes_one_stripe_event(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    events = record(customer, [1, 2, 3], in_closed_window())

    assert deliver_pending().delivered == 3

    group = DeliveryGroup.objects.get()
    identifier = group_identifier(e.identifier for e in events)
    assert (group.value, group.status, group.identifier) == (6, "sent", identifier)
    assert group.occurred_at == max(e.occurred_at for e in events)
    [sent] = fake_stripe.meter_events("api_calls", customer)
    assert (sent["identifier"], sent["value"]) == (group.identifier, 6)
    assert set(UsageEvent.objects.values_list("status", "group")) == {("sent", group.pk)}
    assert not UsageEvent.objects.filter(sent_at=None).exists()


def test_windows_customers_and_non_sum_metrics_are_kept_apart(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    other = str(fake_stripe.create_customer()["id"])
    fake_stripe.create_meter("logins", formula="count")
    MetricFactory(key="logins", event_name="logins", aggregation=Metric.Aggregation.COUNT)
    record(customer, [1, 1], in_closed_window(5))
    record(customer, [2, 2], in_closed_window(3))
    record(other, [5], in_closed_window(5))
    record(customer, [1, 1], in_closed_window(5), metric="logins")

    assert deliver_pending().delivered == 7

    assert DeliveryGroup.objects.count() == 2
    assert len(fake_stripe.meter_events("api_calls", customer)) == 2
    assert fake_stripe.meter_event_total("api_calls", customer) == 6
    assert fake_stripe.meter_event_total("api_calls", other) == 5
    assert fake_stripe.meter_event_total("logins", customer) == 2


def test_events_of_the_open_window_wait_for_it_to_close(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    billflow_usage.record_usage("api_calls", customer, 1)
    billflow_usage.record_usage("api_calls", customer, 1)

    assert deliver_pending().claimed == 0

    later = timezone.now() - timedelta(seconds=2 * WINDOW)
    UsageEvent.objects.update(occurred_at=later)  # as if the window had passed
    assert deliver_pending().delivered == 2
    assert len(fake_stripe.meter_events("api_calls", customer)) == 1


def test_a_crash_after_grouping_resends_the_same_group_once(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    record(customer, [4, 5], in_closed_window())
    claim = claim_events(
        using="default", now=timezone.now(), batch_size=10, lease=300, aggregation_window=WINDOW
    )
    [group] = claim.groups.values()
    # The worker dies here: the group is stored, nothing was sent.
    expire_claims()
    record(customer, [100], in_closed_window())  # later usage in the same window

    assert deliver_pending().delivered == 3

    group.refresh_from_db()
    assert (group.status, group.value) == ("sent", 9)
    sent = {e["identifier"]: e["value"] for e in fake_stripe.meter_events("api_calls", customer)}
    assert sent == {group.identifier: 9, UsageEvent.objects.get(value=100).identifier: 100}
    assert fake_stripe.meter_event_total("api_calls", customer) == 109


def test_a_lost_answer_for_a_group_is_resent_under_its_identifier(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    fake_stripe.faults.add("drop_after_processing", route="/v1/billing/meter_events", times=1)
    record(customer, [2, 3], in_closed_window())

    assert deliver_pending().retried == 2
    make_due()
    assert deliver_pending().delivered == 2

    assert DeliveryGroup.objects.count() == 1
    assert fake_stripe.meter_event_total("api_calls", customer) == 5
    assert fake_stripe.duplicate_identifier_rejections == 1


def test_a_claim_takes_whole_backlogs_so_each_window_is_one_event(
    fake_stripe: FakeStripe, api_calls: Metric
) -> None:
    customers = [str(fake_stripe.create_customer()["id"]) for _ in range(3)]
    at = in_closed_window()
    for n in range(5):  # interleaved, as usage arrives
        for customer in customers:
            record(customer, [n + 1], at)

    # A batch of 7 holds one customer's 5 events, never a part of another's.
    claim = claim_events(
        using="default", now=timezone.now(), batch_size=7, lease=300, aggregation_window=WINDOW
    )
    assert len({e.customer_id for e in claim.events}) == 1
    assert len(claim.events) == 5
    expire_claims()

    assert deliver_pending(batch_size=7).delivered == 15

    for customer in customers:
        [sent] = fake_stripe.meter_events("api_calls", customer)
        assert sent["value"] == 15


def test_a_backlog_larger_than_a_batch_is_split(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    record(customer, [1] * 10, in_closed_window())

    assert deliver_pending(batch_size=4).delivered == 10

    assert [e["value"] for e in fake_stripe.meter_events("api_calls", customer)] == [4, 4, 2]
    assert DeliveryGroup.objects.count() == 3


def test_a_row_stripe_may_hold_already_is_never_aggregated(
    configure: Configure, fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    """Its answer was lost after Stripe stored it (or aggregation was switched on since):
    grouped with a later row, it would be billed twice, under its own identifier and the
    group's. Found by the model-based test."""
    configure(AGGREGATION_WINDOW=0)
    at = in_closed_window()
    record(customer, [35], at)
    fake_stripe.faults.add("drop_after_processing", times=1)
    assert deliver_pending().retried == 1
    configure(AGGREGATION_WINDOW=WINDOW)
    record(customer, [1], at + timedelta(seconds=5))
    make_due()

    deliver_pending()

    assert fake_stripe.meter_event_total("api_calls", customer) == 36
    assert not DeliveryGroup.objects.exists()
    assert set(UsageEvent.objects.values_list("status", flat=True)) == {"sent"}


def test_a_row_a_dead_worker_may_have_sent_is_never_aggregated(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str
) -> None:
    """Claimed and sent, then the worker died before marking it: no attempt is counted, but
    Stripe holds it under its own identifier."""
    at = in_closed_window()
    [first] = record(customer, [35], at)
    held = claim_events(using="default", now=timezone.now(), batch_size=10, lease=1)
    assert [e.pk for e in held.events] == [first.pk]
    backend = get_backend()
    backend.send_meter_events(
        [MeterEvent(first.identifier, "api_calls", customer, 35, first.occurred_at)]
    )
    backend.close()
    expire_claims()
    record(customer, [1], at + timedelta(seconds=5))

    deliver_pending()

    assert fake_stripe.meter_event_total("api_calls", customer) == 36
    assert set(UsageEvent.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.parametrize("redo", ["key refused", "released at its deadline"])
def test_a_dead_workers_row_stays_apart_after_a_redo_that_sent_nothing(
    fake_stripe: FakeStripe, api_calls: Metric, customer: str, redo: str
) -> None:
    """The redo counts no attempt, and used to clear the dead claim's lease with its own: the
    row then looked never sent, was grouped with a later one and billed twice. Found by the
    model-based test."""
    at = in_closed_window()
    [first] = record(customer, [35], at)
    held = claim_events(using="default", now=timezone.now(), batch_size=10, lease=1)
    backend = get_backend()
    backend.send_meter_events(
        [MeterEvent(first.identifier, "api_calls", customer, 35, first.occurred_at)]
    )
    backend.close()
    expire_claims()
    if redo == "key refused":
        fake_stripe.keys.revoke(FAKE_STRIPE_API_KEY)
        assert deliver_pending().refused == 1
        fake_stripe.keys.restore(FAKE_STRIPE_API_KEY)
        make_due()
    else:
        assert deliver_pending(time_limit=0).released == 1
    assert held.events[0].pk == first.pk
    record(customer, [1], at + timedelta(seconds=5))

    deliver_pending()

    assert fake_stripe.meter_event_total("api_calls", customer) == 36
    assert not DeliveryGroup.objects.exists()
    assert set(UsageEvent.objects.values_list("status", flat=True)) == {"sent"}
