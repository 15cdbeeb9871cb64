"""record_usage(..., enforce_limit=True): check and record atomically."""

import threading

import pytest
from django.db import connection, connections, transaction

import billflow_usage
from billflow_usage.exceptions import LimitExceeded
from billflow_usage.models import UsageEvent, UsageGate
from tests.factories import UsageLimitFactory
from tests.limits.conftest import CUSTOMER

pytestmark = pytest.mark.django_db


def test_under_the_limit_records(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=3)
    event = billflow_usage.record_usage(api_calls, CUSTOMER, 3, enforce_limit=True)
    assert event.pk is not None
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 3


def test_past_a_hard_limit_raises_and_writes_nothing(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=3)
    billflow_usage.record_usage(api_calls, CUSTOMER, 2, enforce_limit=True)
    with pytest.raises(LimitExceeded, match="has used 2 of 3 api-calls") as raised:
        billflow_usage.record_usage(api_calls, CUSTOMER, 2, enforce_limit=True)
    status = raised.value.status
    assert (status.used, status.limit, status.remaining, status.exceeded) == (2, 3, 1, True)
    assert UsageEvent.objects.count() == 1
    assert isinstance(raised.value, billflow_usage.LimitExceeded)


def test_a_soft_limit_warns_but_records(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=1, soft=True)
    billflow_usage.record_usage(api_calls, CUSTOMER, 5, enforce_limit=True)
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 5


def test_without_enforce_limit_nothing_changes(api_calls, django_assert_num_queries) -> None:
    UsageLimitFactory(metric=api_calls, limit=1)
    billflow_usage.record_usage(api_calls, CUSTOMER, 5)
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 5
    assert not UsageGate.objects.exists()


def test_a_retry_of_recorded_usage_is_not_refused(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=3)
    first = billflow_usage.record_usage(
        api_calls, CUSTOMER, 3, identifier="req-1", enforce_limit=True
    )
    again = billflow_usage.record_usage(
        api_calls, CUSTOMER, 3, identifier="req-1", enforce_limit=True
    )
    assert again.pk == first.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("on_postgresql")
def test_two_requests_at_the_edge_do_not_both_pass(api_calls) -> None:
    """Both threads check while the other has not committed; the gate makes them take
    turns, so exactly one records the last unit."""
    UsageLimitFactory(metric=api_calls, limit=5)
    billflow_usage.record_usage(api_calls, CUSTOMER, 4)
    both_inside = threading.Barrier(2, timeout=10)
    outcomes: list[str] = []

    def request() -> None:
        try:
            both_inside.wait()
            with transaction.atomic():
                billflow_usage.record_usage(api_calls, CUSTOMER, 1, enforce_limit=True)
                # Hold the transaction open: without the gate, the other thread would read
                # 4 now and pass too.
                threading.Event().wait(0.3)
            outcomes.append("recorded")
        except LimitExceeded:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["recorded", "refused"]
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 5
    assert connection.vendor == "postgresql"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("on_postgresql")
def test_many_concurrent_requests_never_pass_the_limit(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=7)
    start = threading.Barrier(6, timeout=10)
    recorded: list[int] = []

    def request() -> None:
        try:
            start.wait()
            for _ in range(3):
                try:
                    billflow_usage.record_usage(api_calls, CUSTOMER, 1, enforce_limit=True)
                    recorded.append(1)
                except LimitExceeded:
                    pass
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(recorded) == 7
    assert UsageEvent.objects.count() == 7
