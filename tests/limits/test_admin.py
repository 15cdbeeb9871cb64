"""The UsageLimit admin: editable, validated."""

import pytest
from django.contrib.auth.models import User

from billflow_usage.models import UsageLimit
from tests.factories import LicensedMetricFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create_superuser("admin", "a@example.com", "pw"))
    return client


def test_a_limit_is_added_in_the_admin(admin_client, api_calls) -> None:
    response = admin_client.post(
        "/admin/billflow_usage/usagelimit/add/",
        {"metric": api_calls.pk, "limit": 1000, "kind": "hard", "thresholds": "[50, 100]"},
    )
    assert response.status_code == 302
    limit = UsageLimit.objects.get()
    assert (limit.limit, limit.thresholds, limit.scope) == (1000, [50, 100], "everyone")
    assert b"everyone" in admin_client.get("/admin/billflow_usage/usagelimit/").content


def test_the_admin_says_what_is_wrong(admin_client, api_calls) -> None:
    response = admin_client.post(
        "/admin/billflow_usage/usagelimit/add/",
        {"metric": api_calls.pk, "limit": -5, "kind": "hard", "thresholds": "[0]"},
    )
    assert response.status_code == 200
    assert b"whole number of units &gt;= 0" in response.content
    assert b"from 1 to 100" in response.content
    assert not UsageLimit.objects.exists()


def test_licensed_metrics_are_not_offered(admin_client, api_calls) -> None:
    LicensedMetricFactory(key="seats")
    page = admin_client.get("/admin/billflow_usage/usagelimit/add/").content
    assert b"api-calls" in page or b"Api-Calls" in page
    assert b"Seats" not in page


def test_the_usage_page_shows_limits_remaining_and_crossings(
    admin_client, api_calls, django_capture_on_commit_callbacks
) -> None:
    import billflow_usage
    from tests.factories import UsageLimitFactory

    UsageLimitFactory(metric=api_calls, limit=10, thresholds=[50, 100])
    with django_capture_on_commit_callbacks(execute=True):
        billflow_usage.record_usage(api_calls, "cus_Page1", 6, enforce_limit=True)
    page = admin_client.get("/admin/billflow_usage/usageevent/customer/cus_Page1/usage/")
    html = page.content.decode()
    assert 'id="bfu-usage-limits"' in html
    row = html[html.index('id="bfu-usage-limits"') :]
    assert "10 (hard)" in row
    assert "warns at 50%, 100%" in row
    assert '<td class="bfu-number">6</td>' in row
    assert '<td class="bfu-number">4</td>' in row
    assert "<td>50%</td>" in row
