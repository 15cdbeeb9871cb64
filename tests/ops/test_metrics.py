"""Prometheus metrics: counted where delivery, seat pushes and the Stripe transport act,
gauges read from the database at scrape time, served by the view. Skipped without the
``metrics`` extra (prometheus-client)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError
from django.test import RequestFactory
from django.utils import timezone

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import Metric, SubscriptionItemLink, UsageEvent
from billflow_usage.testing.fake_stripe import FakeStripe
from billflow_usage.testing.pytest_plugin import FAKE_STRIPE_API_KEY
from tests.delivery.conftest import Configure
from tests.factories import LicensedMetricFactory, UsageEventFactory
from tests.ops.conftest import recorded, sync_report

pytest.importorskip(
    "prometheus_client",
    reason="the metrics extra is not installed: pip install 'billflow-usage[metrics]'",
)

from prometheus_client.parser import text_string_to_metric_families

from billflow_usage.observability import collector, views
from billflow_usage.observability.instruments import instruments

pytestmark = pytest.mark.django_db


def value(name: str, **labels: str) -> float:
    """A sample of this process's instruments (0 when never counted)."""
    return instruments().registry.get_sample_value(name, labels) or 0.0


class Counted:
    """Samples before a block, to compare with after it (counters are per process)."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def added(self) -> list[float]:
        after = [value(name, **labels) for name, labels in self.samples]
        return [a - b for a, b in zip(after, self.before, strict=True)]


def scrape() -> str:
    response = views.metrics(RequestFactory().get("/metrics/billflow/"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def record(customer: str, count: int = 3) -> None:
    billflow_usage.record_usage_bulk(
        billflow_usage.Usage("api_calls", customer, 2) for _ in range(count)
    )


METER_EVENTS = {"endpoint": "/v1/billing/meter_events", "method": "POST"}


def test_recording_and_delivery_are_counted(
    configure: Configure, api_calls: Metric, customer: str
) -> None:
    counted = Counted(
        ("billflow_usage_events_recorded_total", {"metric": "api_calls", "status": "pending"}),
        (
            "billflow_usage_delivery_results_total",
            {"metric": "api_calls", "outcome": "delivered"},
        ),
        ("billflow_usage_delivery_latency_seconds_count", {"metric": "api_calls"}),
        ("billflow_usage_delivery_latency_seconds_bucket", {"metric": "api_calls", "le": "60.0"}),
        ("billflow_usage_delivery_latency_seconds_bucket", {"metric": "api_calls", "le": "300.0"}),
        ("billflow_usage_delivery_latency_seconds_sum", {"metric": "api_calls"}),
        ("billflow_usage_stripe_requests_total", {**METER_EVENTS, "status": "200"}),
    )
    record(customer)
    for event in UsageEvent.objects.all():
        recorded(event, 90)

    assert deliver_pending().delivered == 3

    recorded_rows, delivered, latencies, under_60, under_300, seconds, requests = counted.added()
    assert (recorded_rows, delivered, latencies, requests) == (3, 3, 3, 3)
    assert (under_60, under_300) == (0, 3)
    assert seconds == pytest.approx(270, abs=5)
    text = scrape()
    assert 'billflow_usage_delivery_results_total{metric="api_calls",outcome="delivered"}' in text
    assert "cus_" not in text  # never a customer in a label


def test_refused_credentials_are_counted(
    fake_stripe: FakeStripe, configure: Configure, api_calls: Metric, customer: str
) -> None:
    counted = Counted(
        ("billflow_usage_credential_rejections_total", {"kind": "events"}),
        ("billflow_usage_delivery_results_total", {"metric": "api_calls", "outcome": "refused"}),
        ("billflow_usage_stripe_requests_total", {**METER_EVENTS, "status": "401"}),
    )
    record(customer)
    fake_stripe.keys.revoke(FAKE_STRIPE_API_KEY)

    deliver_pending()

    rejections, refused, unauthorized = counted.added()
    assert (rejections, refused) == (3, 3)
    assert unauthorized >= 1
    assert "billflow_usage_credentials_rejected 1.0" in scrape()


def test_permanent_failures_are_counted_by_code(configure: Configure, api_calls: Metric) -> None:
    counted = Counted(
        ("billflow_usage_delivery_failures_total", {"code": "timestamp_too_far_in_past"}),
        ("billflow_usage_delivery_results_total", {"metric": "api_calls", "outcome": "failed"}),
    )
    UsageEventFactory(metric=api_calls, occurred_at=timezone.now() - timedelta(days=40))

    assert deliver_pending().failed == 1

    assert counted.added() == [1, 1]
    assert 'billflow_usage_failed_events{code="timestamp_too_far_in_past"} 1.0' in scrape()


def test_seat_pushes_are_counted(
    fake_stripe: FakeStripe, configure: Configure, customer: str
) -> None:
    price = fake_stripe.create_price(unit_amount=1000)
    subscription = fake_stripe.create_subscription(customer, price["id"], quantity=1)
    SubscriptionItemLink.objects.create(
        customer_id=customer,
        metric=LicensedMetricFactory(key="seats"),
        stripe_subscription_id=subscription["id"],
        stripe_subscription_item_id=subscription["items"]["data"][0]["id"],
    )
    items = {"endpoint": "/v1/subscription_items/{id}", "method": "POST", "status": "200"}
    counted = Counted(
        ("billflow_usage_seat_pushes_total", {"outcome": "pushed"}),
        ("billflow_usage_stripe_requests_total", items),
    )
    billflow_usage.set_quantity("seats", customer, 4)

    assert deliver_pending().seats_pushed == 1

    assert counted.added() == [1, 1]


def test_the_gauges_come_from_the_database() -> None:
    orders = LicensedMetricFactory(key="orders", kind=Metric.Kind.METERED)
    recorded(UsageEventFactory(metric=orders), 120)
    UsageEventFactory(metric=orders)
    UsageEventFactory(failed=True, last_error_code="no_meter")
    UsageEventFactory(sent=True, sent_at=timezone.now())
    sync_report(report={"unbilled": [{"metric": "orders", "events": 2}]})

    text = scrape()

    assert "billflow_usage_ledger_up 1.0" in text
    assert 'billflow_usage_backlog_events{metric="orders"} 2.0' in text
    assert 'billflow_usage_oldest_pending_age_seconds{metric="orders"} 120.' in text
    assert 'billflow_usage_failed_events{code="no_meter"} 1.0' in text
    [last] = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "billflow_usage_last_delivery_timestamp_seconds"
    ]
    assert last == pytest.approx(timezone.now().timestamp(), abs=5)
    assert "billflow_usage_credentials_rejected 0.0" in text
    assert 'billflow_usage_sync_drift{metric="orders"} 1.0' in text
    assert "billflow_usage_sync_last_finished_timestamp_seconds" in text
    assert "billflow_usage_health_status 1.0" in text  # a failed row degrades


def test_a_database_error_still_serves_the_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: Any) -> None:
        raise DatabaseError("server closed the connection")

    monkeypatch.setattr(collector, "read_figures", refuse)
    text = scrape()
    assert "billflow_usage_ledger_up 0.0" in text
    assert "billflow_usage_backlog_events" not in text
    assert "# TYPE billflow_usage_delivery_results_total counter" in text


def test_only_get(rf: RequestFactory) -> None:
    assert views.metrics(rf.post("/metrics/billflow/")).status_code == 405


def test_without_the_extra_the_view_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, rf: RequestFactory
) -> None:
    monkeypatch.setattr(views.recorder, "enabled", lambda: False)
    response = views.metrics(rf.get("/metrics/billflow/"))
    assert response.status_code == 501
    assert b"pip install 'billflow-usage[metrics]'" in response.content


def test_recorded_rows_are_counted_under_the_metrics_current_key(
    configure: Configure, api_calls: Metric, customer: str
) -> None:
    record(customer, 1)  # the key is read once
    api_calls.key = "requests"
    api_calls.save()
    counted = Counted(
        ("billflow_usage_events_recorded_total", {"metric": "requests", "status": "pending"})
    )
    billflow_usage.record_usage_bulk([billflow_usage.Usage("requests", customer, 1)])
    assert counted.added() == [1]
