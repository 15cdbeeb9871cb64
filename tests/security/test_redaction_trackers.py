"""A tracker's failure keeps and logs the host's exception text redacted (as Stripe's
messages are) and capped: no secret reaches a ledger row or a log line."""

from __future__ import annotations

import logging

import pytest

from billflow_usage.models import Metric, UsageEvent
from tests.factories import MemberFactory, OrderFactory, WorkspaceFactory
from tests.security.test_redaction_module import SECRETS
from tests.testapp.models import Member, Order
from tests.tracking.helpers import workspace_customer

#: The most a stored or logged message keeps.
MAX_MESSAGE = 1000
TEXT = "the CRM call failed: " + "; ".join(secret for secret, _ in SECRETS.values())


class CrmDown(Exception):
    pass


def leaking_customer(instance: object) -> str:
    raise CrmDown(TEXT)


def assert_no_secret(text: str) -> None:
    for name, (_, hidden) in SECRETS.items():
        assert hidden not in text, f"{name} reached: {text!r}"


def logged_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as a handler would write it, traceback included."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


@pytest.mark.django_db
def test_a_failed_tracker_row_and_its_log_lines_keep_no_secret(
    tracker_registry, metric: Metric, caplog: pytest.LogCaptureFixture
) -> None:
    tracker_registry.track(Order, metric=metric.key, customer=leaking_customer)

    with caplog.at_level(logging.DEBUG):
        order = OrderFactory()

    [row] = UsageEvent.objects.all()
    assert (row.status, row.last_error_code, row.source) == ("failed", "tracker_error", order)
    assert "CrmDown: the CRM call failed: sk_live_***" in row.last_error_message
    assert "Once the cause is fixed" in row.last_error_message  # still says what to do
    assert_no_secret(row.last_error_message)
    assert len(row.last_error_message) <= MAX_MESSAGE
    logged = logged_text(caplog)
    assert "CrmDown" in logged
    assert "Traceback" in logged  # where it failed is still logged
    assert "leaking_customer" in logged
    assert_no_secret(logged)


@pytest.mark.django_db
def test_a_long_message_and_identifier_are_capped_on_the_row(
    tracker_registry, metric: Metric
) -> None:
    def long_failure(order: Order) -> str:
        raise CrmDown("x" * 100_000)

    tracker_registry.track(
        Order,
        metric=metric.key,
        customer=workspace_customer,
        value=long_failure,
        identifier=lambda order: "k" * 100_000,
    )

    OrderFactory()

    [row] = UsageEvent.objects.all()
    assert len(row.last_error_message) <= MAX_MESSAGE
    assert "Once the cause is fixed" in row.last_error_message


@pytest.mark.django_db
def test_bulk_creations_falling_back_one_by_one_log_no_secret(
    tracker_registry, metric: Metric, caplog: pytest.LogCaptureFixture
) -> None:
    tracker_registry.track(Order, metric=metric.key, customer=leaking_customer)
    workspace = WorkspaceFactory()
    orders = Order.objects.bulk_create([Order(workspace=workspace), Order(workspace=workspace)])

    with caplog.at_level(logging.DEBUG):
        tracker_registry.record_bulk_created(Order, orders, "default")

    assert UsageEvent.objects.filter(status="failed").count() == 2
    assert_no_secret(logged_text(caplog))
    for row in UsageEvent.objects.all():
        assert_no_secret(row.last_error_message)


@pytest.mark.django_db
def test_a_seat_trackers_failure_logs_no_secret(
    tracker_registry,
    seats: Metric,
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks,
) -> None:
    def leaking_quantity(customer_id: str) -> int:
        raise CrmDown(TEXT)

    tracker_registry.track_quantity(
        Member, metric=seats.key, customer=workspace_customer, quantity=leaking_quantity
    )

    with caplog.at_level(logging.DEBUG), django_capture_on_commit_callbacks(execute=True):
        MemberFactory()

    logged = logged_text(caplog)
    assert "CrmDown" in logged
    assert_no_secret(logged)
