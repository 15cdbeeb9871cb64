"""The per-customer usage page: ledger against Stripe (the fake, over HTTP), drift, the chart,
Stripe being down, permissions, validation and query counts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, UsageEvent
from billflow_usage.reconcile.metered import minute_floor
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from tests.admin.conftest import Account, ago, staff_with
from tests.factories import LicensedMetricFactory, MetricFactory, SubscriptionItemLinkFactory

pytestmark = pytest.mark.django_db


def usage_url(customer: str) -> str:
    return reverse("admin:billflow_usage_customer_usage", args=[customer])


def figures_by_metric(response) -> dict[str, object]:
    return {row.metric.key: row for row in response.context["usage"].figures}


def test_url_contract() -> None:
    assert usage_url("cus_X") == "/admin/billflow_usage/usageevent/customer/cus_X/usage/"


def test_ledger_stripe_and_drift_for_the_billing_period(
    client, viewer: User, account: Account
) -> None:
    billflow_usage.record_usage("api_calls", account.customer, 5, timestamp=ago(days=2))
    billflow_usage.record_usage("api_calls", account.customer, 2, timestamp=ago(days=1))
    # Before the billing period: Stripe has it too, but neither side counts it.
    billflow_usage.record_usage("api_calls", account.customer, 100, timestamp=ago(days=4))
    assert deliver_pending().delivered == 3
    assert account.fake.meter_event_total("api_calls", account.customer) == 107
    billflow_usage.record_usage("api_calls", account.customer, 4)  # pending
    billflow_usage.record_usage("api_calls", "cus_Other", 100)  # another customer
    client.force_login(viewer)

    response = client.get(usage_url(account.customer))

    assert response.status_code == 200
    row = figures_by_metric(response)["api_calls"]
    assert (row.ledger, row.pending_events, row.stripe, row.drift) == (11, 1, 7, -4)
    assert row.period.from_subscription
    # Minute-aligned, as Stripe's summaries require.
    assert row.period.start == minute_floor(account.link.current_period_start)
    html = response.text
    assert 'id="bfu-usage-totals"' in html
    assert "1 event not sent yet" in html
    assert '<span class="bfu-drift">-4 (Stripe has 4 less)</span>' in html


def test_surplus_in_stripe_is_highlighted(client, viewer: User, account: Account) -> None:
    billflow_usage.record_usage("api_calls", account.customer, 3, timestamp=ago(hours=5))
    deliver_pending()
    account.send_behind_the_ledgers_back(2, at=ago(hours=4))
    client.force_login(viewer)

    response = client.get(usage_url(account.customer))

    row = figures_by_metric(response)["api_calls"]
    assert (row.ledger, row.stripe, row.drift) == (3, 5, 2)
    assert "+2 (Stripe has 2 more)" in response.text
    assert 'class="bfu-drifting"' in response.text


def test_in_sync_is_not_highlighted(client, viewer: User, account: Account) -> None:
    billflow_usage.record_usage("api_calls", account.customer, 3, timestamp=ago(hours=5))
    deliver_pending()
    client.force_login(viewer)

    response = client.get(usage_url(account.customer))

    assert figures_by_metric(response)["api_calls"].drift == 0
    assert "0 (in sync)" in response.text
    assert "bfu-drift" not in re.sub(r"<style>.*?</style>", "", response.text, flags=re.S)


@pytest.mark.now("2026-11-18T15:00:00Z")  # the three events fall in this calendar month
def test_count_and_last_meters_count_like_stripe(client, viewer: User, account: Account) -> None:
    for key, formula in (("logins", "count"), ("storage", "last")):
        meter = account.fake.create_meter(key, formula=formula)
        MetricFactory(key=key, event_name=key, aggregation=formula, stripe_meter_id=meter["id"])
    for value, hours in ((7, 30), (3, 20), (9, 10)):
        billflow_usage.record_usage("logins", account.customer, timestamp=ago(hours=hours))
        billflow_usage.record_usage("storage", account.customer, value, timestamp=ago(hours=hours))
    deliver_pending()
    client.force_login(viewer)

    figures = figures_by_metric(client.get(usage_url(account.customer)))

    assert (figures["logins"].ledger, figures["logins"].stripe) == (3, 3)
    assert (figures["storage"].ledger, figures["storage"].stripe) == (9, 9)
    # No subscription item for these two: the calendar month, said so.
    assert not figures["logins"].period.from_subscription


def test_usage_without_subscription_item_uses_the_calendar_month(client, viewer, account) -> None:
    MetricFactory(key="exports", event_name="exports")
    billflow_usage.record_usage("exports", account.customer, 4)
    client.force_login(viewer)

    response = client.get(usage_url(account.customer))

    row = figures_by_metric(response)["exports"]
    now = timezone.now()
    assert (row.period.start.day, row.period.start.month) == (1, now.month)
    assert not row.period.from_subscription
    assert row.ledger == 4
    assert row.stripe is None
    assert "No Stripe meter ID is stored" in row.stripe_note
    assert "current calendar month (UTC)" in response.text
    assert "calendar month (no subscription item)" in response.text


@pytest.mark.now("2026-12-01T00:30:00Z")
def test_the_calendar_month_starts_at_midnight_utc_on_the_first(client, viewer, account) -> None:
    MetricFactory(key="exports", event_name="exports")
    billflow_usage.record_usage("exports", account.customer, 7, timestamp=ago(hours=30))
    billflow_usage.record_usage("exports", account.customer, 2, timestamp=ago(minutes=20))
    client.force_login(viewer)

    row = figures_by_metric(client.get(usage_url(account.customer)))["exports"]

    # November's usage is not December's.
    assert (row.period.start, row.period.end) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert row.ledger == 2


@pytest.mark.now("2026-12-31T23:50:00Z")
def test_the_calendar_month_of_december_ends_with_the_year(client, viewer, account) -> None:
    MetricFactory(key="exports", event_name="exports")
    billflow_usage.record_usage("exports", account.customer, 3, timestamp=ago(days=30))
    client.force_login(viewer)

    row = figures_by_metric(client.get(usage_url(account.customer)))["exports"]

    assert (row.period.start, row.period.end) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert row.ledger == 3


def test_seats_compare_desired_with_confirmed_quantity(client, viewer, account) -> None:
    seats = LicensedMetricFactory(key="seats")
    SubscriptionItemLinkFactory(
        customer_id=account.customer,
        metric=seats,
        quantity=5,
        quantity_version=2,
        synced_quantity=3,
        synced_version=1,
    )
    client.force_login(viewer)

    row = figures_by_metric(client.get(usage_url(account.customer)))["seats"]

    assert (row.ledger, row.stripe, row.drift) == (5, 3, -2)
    assert "Waiting for Stripe to confirm" in row.stripe_note


@pytest.mark.now("2026-11-18T15:00:00Z")  # two days ago is in this calendar month
def test_daily_chart_is_inline_accessible_svg(client, viewer: User, account: Account) -> None:
    meter = account.fake.create_meter("exports", formula="sum")
    MetricFactory(key="exports", event_name="exports", stripe_meter_id=meter["id"])
    billflow_usage.record_usage("api_calls", account.customer, 5, timestamp=ago(days=2))
    billflow_usage.record_usage("api_calls", account.customer, 2, timestamp=ago(days=2))
    billflow_usage.record_usage("exports", account.customer, 1, timestamp=ago(days=1))
    client.force_login(viewer)

    response = client.get(usage_url(account.customer))

    html = response.text
    [svg] = re.findall(r"<svg class=\"bfu-daily-chart\".*?</svg>", html, flags=re.S)
    assert 'role="img"' in svg
    assert f'aria-label="Daily usage of {account.customer}' in svg
    assert svg.count("<polyline") == 2
    assert "Day (UTC)" in svg
    assert "Usage per day" in svg
    day = ago(days=2).date().isoformat()
    assert f"<title>Api_Calls: 7 on {day}</title>" in svg
    assert "<script" not in svg
    assert not re.search(r"(src|href)=\"https?://", html)
    chart = response.context["chart"]
    days = response.context["usage"].days
    # From the earlier start: the item's period, or the calendar month of "exports" (no item).
    month_start = timezone.now().date().replace(day=1)
    last_of_month = (month_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    assert days[0] == min(account.link.current_period_start.date(), month_start)
    assert days[-1] == max(
        (account.link.current_period_end - timedelta(seconds=1)).date(), last_of_month
    )
    # Sum meters: a point (0 without usage) for every day of the metric's period so far.
    for line, series in zip(chart.series, response.context["usage"].daily, strict=True):
        assert len(line.points) == len(series.days)
        assert series.days[-1] == timezone.now().date()
        assert set(series.days) <= set(days)


def test_stripe_down_still_shows_the_ledger(client, viewer: User, account: Account) -> None:
    billflow_usage.record_usage("api_calls", account.customer, 6, timestamp=ago(hours=3))
    deliver_pending()
    account.fake.faults.add("outage")
    client.force_login(viewer)

    response = client.get(usage_url(account.customer))

    assert response.status_code == 200
    row = figures_by_metric(response)["api_calls"]
    assert (row.ledger, row.stripe, row.drift) == (6, None, None)
    assert "Stripe could not be reached" in response.text
    assert 'class="bfu-daily-chart"' in response.text
    assert FAKE_STRIPE_API_KEY not in response.text


def test_stripe_refusing_the_read_is_shown_per_metric(client, viewer, account) -> None:
    Metric.objects.filter(pk=account.api_calls.pk).update(stripe_meter_id="mtr_Gone")
    client.force_login(viewer)

    row = figures_by_metric(client.get(usage_url(account.customer)))["api_calls"]

    assert row.stripe is None
    assert "Stripe refused the request (resource_missing" in row.stripe_note


def test_backend_without_reads(client, viewer: User, account: Account, settings) -> None:
    settings.BILLFLOW_USAGE = {
        **settings.BILLFLOW_USAGE,
        "BACKEND": "billflow_usage.backends.console.ConsoleBackend",
    }
    client.force_login(viewer)

    response = client.get(usage_url(account.customer))

    assert response.status_code == 200
    assert "ConsoleBackend cannot read usage totals" in response.text


def test_invalid_customer_id_is_a_404_saying_why(client, viewer: User) -> None:
    client.force_login(viewer)

    response = client.get(usage_url("acme<script>"))

    assert response.status_code == 404
    assert "is not a Stripe customer ID" in response.text
    assert "<script>" not in response.text


def test_unknown_customer_shows_an_empty_page(client, viewer: User) -> None:
    client.force_login(viewer)

    response = client.get(usage_url("cus_Nobody"))

    assert response.status_code == 200
    assert "No usage recorded and no subscription item" in response.text
    assert response.context["chart"] is None


def test_needs_view_permission_on_the_ledger(client, db) -> None:
    assert client.get(usage_url("cus_X")).status_code == 302  # to the login page
    client.force_login(staff_with("view_subscriptionitemlink"))
    assert client.get(usage_url("cus_X")).status_code == 403


def test_queries_do_not_grow_with_rows_or_metrics(
    client, viewer: User, account: Account, django_assert_max_num_queries
) -> None:
    client.force_login(viewer)
    billflow_usage.record_usage("api_calls", account.customer, 1)
    # 9, and one for the limits section (which metrics have a limit: none here).
    with django_assert_max_num_queries(10):
        client.get(usage_url(account.customer))
    for key, formula in (("logins", "count"), ("storage", "last"), ("exports", "sum")):
        MetricFactory(key=key, event_name=key, aggregation=formula)
        for days in range(3):
            for _ in range(10):
                billflow_usage.record_usage(key, account.customer, timestamp=ago(days=days))
    assert UsageEvent.objects.count() == 91
    with django_assert_max_num_queries(10):
        client.get(usage_url(account.customer))


def test_linked_from_ledger_and_subscription_items(client, viewer: User, account: Account) -> None:
    billflow_usage.record_usage("api_calls", account.customer, 1)
    client.force_login(viewer)
    url = usage_url(account.customer)

    ledger = client.get(reverse("admin:billflow_usage_usageevent_changelist"))
    items = client.get(reverse("admin:billflow_usage_subscriptionitemlink_changelist"))
    change = client.get(
        reverse("admin:billflow_usage_subscriptionitemlink_change", args=[account.link.pk])
    )

    assert f'href="{url}"' in ledger.text
    assert f'href="{url}"' in items.text
    assert f'<a href="{url}" class="bfu-usage-link">Usage</a>' in change.text
