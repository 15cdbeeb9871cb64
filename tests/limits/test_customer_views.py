"""What customers see: the JSON usage view and the usage_meter template tag."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.template import Context, Template
from django.utils import timezone

import billflow_usage
from tests.factories import CustomerFactory, UsageLimitFactory, WorkspaceFactory

# The figures below are of the billing period around the suite's usual instant (tests/clock.py).
pytestmark = [pytest.mark.django_db, pytest.mark.now("2026-06-15T12:00:00Z")]

CUSTOMER_FOR_REQUEST = "tests.limits.customer_for_request.workspace_of"


@pytest.fixture
def signed_in(client, settings):
    settings.BILLFLOW_USAGE = {
        **settings.BILLFLOW_USAGE,
        "CUSTOMER_FOR_REQUEST": CUSTOMER_FOR_REQUEST,
    }
    workspace = WorkspaceFactory(email="owner@example.com")
    customer = CustomerFactory(subscriber=workspace)
    client.force_login(User.objects.create_user("owner", "owner@example.com", "pw"))
    return customer


def test_usage_view_answers_for_the_signed_in_customer(client, signed_in, api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=100)
    billflow_usage.record_usage(
        api_calls, signed_in.id, 30, timestamp=timezone.now() - timedelta(days=1)
    )
    billflow_usage.record_usage(api_calls, signed_in.id, 12)
    billflow_usage.record_usage(api_calls, "cus_Someoneelse", 99)
    body = client.get("/billing/usage/api-calls/").json()
    assert (body["used"], body["limit"], body["remaining"], body["kind"]) == (42, 100, 58, "hard")
    assert body["period"] == {
        "start": "2026-06-01T00:00:00+00:00",
        "end": "2026-07-01T00:00:00+00:00",
    }
    assert len(body["daily"]) == 15
    assert body["daily"][-2:] == [
        {"date": "2026-06-14", "value": 30},
        {"date": "2026-06-15", "value": 12},
    ]


def test_usage_view_refuses_what_it_cannot_answer(client, signed_in, settings) -> None:
    assert client.get("/billing/usage/nope/").status_code == 404
    client.logout()
    assert client.get("/billing/usage/nope/").json()["error"] == "no_customer"
    settings.BILLFLOW_USAGE = {}
    response = client.get("/billing/usage/nope/")
    assert response.status_code == 503
    assert "CUSTOMER_FOR_REQUEST" in response.json()["detail"]


def render(customer, metric="api-calls") -> str:
    template = Template("{% load billflow_usage %}{% usage_meter customer metric %}")
    return template.render(Context({"customer": customer, "metric": metric}))


def test_usage_meter_renders_an_accessible_meter(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=200, thresholds=[75, 100])
    billflow_usage.record_usage(api_calls, "cus_Meter1", 50)
    html = render("cus_Meter1")
    assert '<label for="bfu-meter-api-calls">Api-Calls</label>' in html
    assert (
        '<meter id="bfu-meter-api-calls" min="0" max="200" value="50" high="150" optimum="0">'
        in html
    )
    assert "50 of 200 used, 150 left" in html


def test_usage_meter_without_a_limit_shows_the_usage(api_calls) -> None:
    billflow_usage.record_usage(api_calls, "cus_Meter1", 7)
    html = render("cus_Meter1")
    assert "<meter" not in html
    assert '<output id="bfu-meter-api-calls">7</output>' in html
    assert "(no limit)" in html
