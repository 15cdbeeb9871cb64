"""Trackers of count metrics: every event counts one in Stripe, so a tracker can neither
record another value nor take usage back with a negative event."""

from __future__ import annotations

import logging

import pytest

from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.tracking.registry import TrackerRegistry
from tests.delivery.conftest import Configure
from tests.factories import MetricFactory, WorkspaceFactory
from tests.testapp.models import Order
from tests.tracking.helpers import ledger, workspace_customer

Status = UsageEvent.Status


@pytest.fixture
def logins(fake_stripe: FakeStripe) -> Metric:
    """A count metric with its meter in the fake."""
    fake_stripe.create_meter("logins", formula="count")
    return MetricFactory(key="logins", event_name="logins", aggregation=Metric.Aggregation.COUNT)


@pytest.mark.django_db
def test_a_negative_count_is_kept_failed_and_never_billed(
    configure: Configure,
    tracker_registry: TrackerRegistry,
    fake_stripe: FakeStripe,
    logins: Metric,
    customer: str,
) -> None:
    configure(METER_API="v1")
    tracker_registry.track(Order, metric="logins", customer=workspace_customer, value=-1)
    Order.objects.create(workspace=WorkspaceFactory(stripe_customer_id=customer))

    deliver_pending()

    [row] = ledger()
    assert (row.status, row.last_error_code) == (Status.FAILED, "tracker_error")
    assert "cancel the event instead" in row.last_error_message
    assert fake_stripe.meter_event_total("logins", customer) == 0


@pytest.mark.django_db
def test_reverse_on_delete_cancels_what_is_unsent_and_never_counts_a_reversal(
    configure: Configure,
    tracker_registry: TrackerRegistry,
    fake_stripe: FakeStripe,
    logins: Metric,
    customer: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    configure(METER_API="v1")
    tracker_registry.track(
        Order, metric="logins", customer=workspace_customer, reverse_on_delete=True
    )
    workspace = WorkspaceFactory(stripe_customer_id=customer)
    billed, unsent = (Order.objects.create(workspace=workspace) for _ in range(2))
    deliver_pending(event_ids=[ledger()[0].pk])

    with caplog.at_level(logging.WARNING, logger="billflow_usage"):
        billed.delete()
        unsent.delete()
    deliver_pending()

    assert [(e.status, e.value) for e in ledger()] == [(Status.SENT, 1), (Status.CANCELLED, 1)]
    assert fake_stripe.meter_event_total("logins", customer) == 1
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "count meter" in warning.getMessage()
    assert ledger()[0].identifier in warning.getMessage()  # what to cancel in the admin
