"""The ``limited`` view decorator: 429 with RateLimit-* headers, on sync and async views."""

import json
from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.http import HttpResponse
from django.test import RequestFactory

import billflow_usage
from tests.factories import UsageLimitFactory
from tests.limits.conftest import CUSTOMER

# The figures below are of the billing period around the suite's usual instant (tests/clock.py).
pytestmark = [pytest.mark.django_db, pytest.mark.now("2026-06-15T12:00:00Z")]

#: The suite's instant (2026-06-15 12:00 UTC) to the end of June.
SECONDS_LEFT = int(
    (datetime(2026, 7, 1, tzinfo=UTC) - datetime(2026, 6, 15, 12, tzinfo=UTC)).total_seconds()
)


def customer_of(request):
    return request.headers.get("X-Customer")


@billflow_usage.limited("api-calls", customer=customer_of)
def sync_view(request):
    return HttpResponse("ok")


@billflow_usage.limited("api-calls", customer=customer_of)
async def async_view(request):
    return HttpResponse("ok")


def call(view, customer=CUSTOMER):
    request = RequestFactory().get("/", headers={"X-Customer": customer} if customer else {})
    return async_to_sync(view)(request) if iscoroutinefunction(view) else view(request)


@pytest.mark.parametrize("view", [sync_view, async_view], ids=["sync", "async"])
def test_under_the_limit_the_view_runs_with_headers(api_calls, view) -> None:
    UsageLimitFactory(metric=api_calls, limit=2)
    response = call(view)
    assert response.status_code == 200
    assert response["RateLimit-Limit"] == "2"
    assert response["RateLimit-Remaining"] == "1"
    assert abs(int(response["RateLimit-Reset"]) - SECONDS_LEFT) <= 2
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 1


@pytest.mark.parametrize("view", [sync_view, async_view], ids=["sync", "async"])
def test_over_a_hard_limit_the_answer_is_429_and_nothing_runs(api_calls, view) -> None:
    UsageLimitFactory(metric=api_calls, limit=1)
    assert call(view).status_code == 200
    response = call(view)
    assert response.status_code == 429
    body = json.loads(response.content)
    assert body["metric"] == "api-calls"
    assert (body["limit"], body["used"]) == (1, 1)
    assert body["resets_at"] == "2026-07-01T00:00:00+00:00"
    assert response["RateLimit-Remaining"] == "0"
    assert response["Retry-After"] == response["RateLimit-Reset"]
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 1


def test_a_soft_limit_lets_requests_through(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=1, soft=True)
    call(sync_view)
    response = call(sync_view)
    assert response.status_code == 200
    assert response["RateLimit-Remaining"] == "0"


def test_unlimited_and_anonymous_requests_get_no_headers(api_calls) -> None:
    assert "RateLimit-Limit" not in call(sync_view)
    UsageLimitFactory(metric=api_calls, limit=0)
    assert call(sync_view, customer=None).status_code == 200


def test_record_false_only_checks(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=1)
    check_only = billflow_usage.limited("api-calls", customer=customer_of, record=False)(
        lambda request: HttpResponse("ok")
    )
    assert call(check_only).status_code == 200
    assert billflow_usage.current_usage(api_calls, CUSTOMER) == 0
    billflow_usage.record_usage(api_calls, CUSTOMER)
    assert call(check_only).status_code == 429
