"""Metrics in the admin: whether each one's Stripe meter exists, is active and counts the
right events (read from the fake Stripe), on the change form and as an action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billflow_usage.models import Metric
from tests.admin.conftest import Account, staff_with
from tests.factories import LicensedMetricFactory, MetricFactory

pytestmark = pytest.mark.django_db


def change_page(client, metric: Metric) -> str:
    return client.get(reverse("admin:billflow_usage_metric_change", args=[metric.pk])).text


def check(client, metrics):
    return client.post(
        reverse("admin:billflow_usage_metric_changelist"),
        {"action": "check_meters", "_selected_action": [str(m.pk) for m in metrics]},
        follow=True,
    )


def test_meter_found_active_and_matching(client, viewer, account: Account) -> None:
    client.force_login(viewer)
    page = change_page(client, account.api_calls)
    meter = account.api_calls.stripe_meter_id
    assert f"Meter {meter} exists in Stripe, is active and counts &#x27;api_calls&#x27;" in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event_name": "api-calls-v2"}, "counts &#x27;api_calls&#x27; events but the metric"),
        ({"aggregation": "count"}, "aggregates with &#x27;sum&#x27; but the metric says"),
        ({"stripe_meter_id": "mtr_Gone"}, "Stripe has no meter mtr_Gone"),
        ({"stripe_meter_id": ""}, "No meter ID stored; Stripe&#x27;s active meter"),
        (
            {"stripe_meter_id": "", "event_name": "uploads"},
            "No meter in Stripe counts &#x27;uploads&#x27; events",
        ),
    ],
)
def test_meter_problems_are_named(client, viewer, account: Account, change, message) -> None:
    Metric.objects.filter(pk=account.api_calls.pk).update(**change)
    client.force_login(viewer)
    assert message in change_page(client, account.api_calls)


def test_deactivated_meter(client, viewer, account: Account) -> None:
    account.client.v1.billing.meters.deactivate(account.api_calls.stripe_meter_id)
    client.force_login(viewer)
    assert "it is inactive, so Stripe refuses its events" in change_page(client, account.api_calls)


def test_stripe_unreachable_is_a_message_not_an_error(client, viewer, account: Account) -> None:
    account.fake.faults.add("outage")
    client.force_login(viewer)
    response = client.get(
        reverse("admin:billflow_usage_metric_change", args=[account.api_calls.pk])
    )
    assert response.status_code == 200
    assert "Could not check the meters: Stripe could not be reached" in response.text


def test_add_form_has_no_meter_check(client, account: Account) -> None:
    client.force_login(staff_with("add_metric", "view_metric"))
    page = client.get(reverse("admin:billflow_usage_metric_add"))
    assert page.status_code == 200
    assert "Meter in Stripe" not in page.text
    assert account.fake.request_count("/v1/billing/meters") == 0


def test_check_action_reports_each_metric(client, editor, account: Account) -> None:
    uploads = MetricFactory(key="uploads", event_name="uploads")
    seats = LicensedMetricFactory(key="seats")
    client.force_login(editor)

    response = check(client, [account.api_calls, uploads, seats])

    text = response.text
    meter = account.api_calls.stripe_meter_id
    assert f"Api_Calls: Meter {meter} exists in Stripe" in text
    assert "Uploads: No meter in Stripe counts &#x27;uploads&#x27; events" in text
    assert "Seats: Seat metrics have no meter" in text
    assert account.fake.request_count("/v1/billing/meters", "GET") == 1


def test_check_action_with_stripe_down(client, editor, account: Account) -> None:
    account.fake.faults.add("outage")
    client.force_login(editor)
    response = check(client, [account.api_calls])
    assert "Could not check the meters: Stripe could not be reached" in response.text


def test_viewer_cannot_run_the_check_action(client, viewer, account: Account) -> None:
    client.force_login(viewer)
    check(client, [account.api_calls])
    assert account.fake.request_count("/v1/billing/meters", "GET") == 0
