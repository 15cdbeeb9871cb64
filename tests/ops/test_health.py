"""The health figures and the verdict ``billflow_status``, the admin and the gauges share."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billflow_usage.checks import check_settings
from billflow_usage.models import SyncReport, UsageEvent
from billflow_usage.services.health import State, Thresholds, check_health, read_figures
from tests.factories import (
    LicensedMetricFactory,
    MetricFactory,
    SubscriptionItemLinkFactory,
    UsageEventFactory,
)
from tests.ops.conftest import recorded, sync_report

pytestmark = pytest.mark.django_db

LIMITS = Thresholds(max_lag=600, max_failed=0, unreachable_after=1800)


def codes(thresholds: Thresholds = LIMITS) -> dict[str, State]:
    return {p.code: p.state for p in check_health(thresholds).problems}


def test_an_empty_ledger_is_healthy() -> None:
    health = check_health(LIMITS)
    assert health.state == State.HEALTHY
    assert health.problems == []
    figures = health.figures
    assert (figures.backlog, figures.oldest_pending_age, figures.failed) == (0, None, 0)
    assert figures.last_delivery is None
    assert figures.credential_code == ""
    assert figures.last_sync is None


def test_figures_by_metric_and_code() -> None:
    orders, calls = MetricFactory(key="orders"), MetricFactory(key="calls")
    recorded(UsageEventFactory(metric=orders), 120)
    recorded(UsageEventFactory(metric=orders), 30)
    recorded(UsageEventFactory(metric=calls), 45)
    UsageEventFactory(metric=calls, failed=True)
    UsageEventFactory(metric=calls, failed=True, last_error_code="no_meter")
    UsageEventFactory(unknown_metric=True)
    UsageEventFactory(metric=calls, cancelled=True)
    delivered = UsageEventFactory(metric=calls, sent=True)
    UsageEvent.objects.filter(pk=delivered.pk).update(sent_at=timezone.now() - timedelta(minutes=3))
    UsageEventFactory(metric=calls, sent=True, sent_at=timezone.now() - timedelta(hours=1))

    figures = read_figures()

    assert figures.backlog == 3
    assert figures.backlog_by_metric == {"calls": 1, "orders": 2}
    ages = figures.oldest_pending_by_metric
    assert ages == {"calls": pytest.approx(45, abs=1), "orders": pytest.approx(120, abs=1)}
    assert figures.oldest_pending_age == ages["orders"]
    assert figures.failed_by_code == {
        "meter_event_customer_not_found": 1,
        "no_meter": 1,
        "unknown_metric": 1,
    }
    assert figures.last_delivery is not None
    assert abs(figures.last_delivery - (timezone.now() - timedelta(minutes=3))) < timedelta(
        seconds=5
    )


def test_lag_past_the_threshold_degrades() -> None:
    recorded(UsageEventFactory(), 601)
    assert codes() == {"lag": State.DEGRADED}
    assert codes(Thresholds(max_lag=700, max_failed=0, unreachable_after=1800)) == {}


def test_failed_rows_past_the_threshold_degrade() -> None:
    UsageEventFactory.create_batch(2, failed=True)
    health = check_health(LIMITS)
    assert health.state == State.DEGRADED
    [problem] = health.problems
    assert problem.code == "failed"
    assert "meter_event_customer_not_found: 2" in problem.message
    assert codes(Thresholds(max_lag=600, max_failed=2, unreachable_after=1800)) == {}


@pytest.mark.parametrize("code", ["credentials_rejected", "permission_denied"])
def test_rows_waiting_on_refused_credentials_break_it(code: str) -> None:
    UsageEventFactory(last_error_code=code, last_error_message="Stripe rejected the API key")
    health = check_health(LIMITS)
    assert health.state == State.BROKEN
    assert health.figures.credential_code == code
    assert [p.code for p in health.problems] == ["credentials"]
    assert "sk_" not in health.problems[0].message


def test_a_seat_push_refused_for_credentials_breaks_it() -> None:
    SubscriptionItemLinkFactory(metric=LicensedMetricFactory(), last_error_code="permission_denied")
    health = check_health(LIMITS)
    assert health.figures.credential_code == "permission_denied"
    assert [(p.code, p.state) for p in health.problems] == [("credentials", State.BROKEN)]


def test_stripe_unreachable_past_the_limit_breaks_it() -> None:
    UsageEventFactory(sent=True, sent_at=timezone.now() - timedelta(hours=2))
    failing = UsageEventFactory(attempts=4, last_error_code="api_connection_error")
    recorded(failing, 1801)
    health = check_health(Thresholds(max_lag=7200, max_failed=0, unreachable_after=1800))
    assert [(p.code, p.state) for p in health.problems] == [("unreachable", State.BROKEN)]
    assert "api_connection_error" in health.problems[0].message
    assert "Nothing reached Stripe for 30 min" in health.problems[0].message


def test_a_recent_delivery_means_stripe_answers() -> None:
    """Rows failing for reasons of their own (a lock timeout) while others go through."""
    recorded(UsageEventFactory(attempts=4, last_error_code="lock_timeout"), 3600)
    UsageEventFactory(sent=True, sent_at=timezone.now() - timedelta(seconds=60))
    assert codes(Thresholds(max_lag=7200, max_failed=0, unreachable_after=1800)) == {}


def test_the_last_sync_drift_by_metric_and_missing_meters() -> None:
    sync_report(
        started_at=timezone.now() - timedelta(days=1),
        drift_remaining=9,
        report={"meters": [{"metric": "old", "meter_id": ""}]},
    )
    latest = sync_report(
        drift_remaining=4,
        report={
            "meters": [
                {"metric": "orders", "meter_id": "mtr_1"},
                {"metric": "calls", "meter_id": ""},
            ],
            "metered": [
                {"metric": "orders", "status": "mismatch", "applied": False},
                {"metric": "orders", "status": "missing_in_stripe", "applied": True},
                {"metric": "orders", "status": "skipped", "applied": False},
            ],
            "seats": [{"metric": "seats", "status": "stripe_differs", "applied": False}],
            "unbilled": [{"metric": "calls", "events": 3}],
        },
    )
    sync_report(started_at=timezone.now(), finished_at=None, status=SyncReport.Status.RUNNING)

    health = check_health(LIMITS)
    sync = health.figures.last_sync
    assert sync is not None
    assert sync.report_id == latest.pk
    assert sync.drift_by_metric == {"calls": 1, "orders": 1, "seats": 1}
    assert sync.meters_missing == ["calls"]
    assert [(p.code, p.state) for p in health.problems] == [("meters_missing", State.BROKEN)]


def test_a_failed_sync_degrades() -> None:
    sync_report(status=SyncReport.Status.FAILED, error_message="Stripe timed out")
    health = check_health(LIMITS)
    assert health.state == State.DEGRADED
    assert "Stripe timed out" in health.problems[0].message


def test_broken_comes_before_degraded() -> None:
    recorded(UsageEventFactory(last_error_code="credentials_rejected"), 900)
    UsageEventFactory(failed=True)
    health = check_health(LIMITS)
    assert [p.code for p in health.problems] == ["credentials", "lag", "failed"]
    assert health.as_dict()["exit_code"] == 2


def test_thresholds_come_from_the_settings(settings) -> None:
    settings.BILLFLOW_USAGE = {
        **settings.BILLFLOW_USAGE,
        "STATUS_MAX_LAG": 60,
        "STATUS_MAX_FAILED": 3,
        "STATUS_UNREACHABLE_AFTER": 120,
    }
    assert Thresholds.from_settings() == Thresholds(60, 3, 120)
    assert Thresholds.from_settings(max_lag=5, max_failed=None) == Thresholds(5, 3, 120)


def test_default_thresholds() -> None:
    assert Thresholds.from_settings() == Thresholds(900, 0, 1800)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STATUS_MAX_LAG", 0),
        ("STATUS_MAX_LAG", float("nan")),
        ("STATUS_MAX_LAG", "900"),
        ("STATUS_MAX_FAILED", -1),
        ("STATUS_MAX_FAILED", 1.5),
        ("STATUS_UNREACHABLE_AFTER", float("inf")),
        ("STATUS_UNREACHABLE_AFTER", 40 * 86400),
    ],
)
def test_malformed_thresholds_are_reported_by_the_checks(settings, name, value) -> None:
    settings.BILLFLOW_USAGE = {"BACKEND": "billflow_usage.backends.locmem.LocMemBackend"} | {
        name: value
    }
    messages = check_settings()
    assert [m.id for m in messages] == ["billflow_usage.E005"]
    assert "seconds" in messages[0].hint or "failed rows" in messages[0].hint
