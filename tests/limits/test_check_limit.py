"""check_limit and UsageLimit: scopes, figures, bad input."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import IntegrityError
from djstripe.models import Price, Product, Subscription, SubscriptionItem

import billflow_usage
from billflow_usage.models import Metric, UsageLimit
from tests.factories import (
    CustomerFactory,
    LicensedMetricFactory,
    MetricFactory,
    UsageEventFactory,
    UsageLimitFactory,
)
from tests.limits.conftest import CUSTOMER

# The figures below are of the billing period around the suite's usual instant (tests/clock.py).
pytestmark = [pytest.mark.django_db, pytest.mark.now("2026-06-15T12:00:00Z")]


def subscribe(customer_id: str, price_id: str, status: str = "active") -> None:
    customer = CustomerFactory(id=customer_id)
    product = Product.objects.create(id=f"prod_{price_id}", name="Pro", stripe_data={})
    price = Price.objects.create(
        id=price_id, product=product, active=True, currency="usd", stripe_data={}
    )
    subscription = Subscription.objects.create(
        id=f"sub_{price_id}", customer=customer, stripe_data={"status": status}
    )
    SubscriptionItem.objects.create(
        id=f"si_{price_id}", subscription=subscription, price=price, stripe_data={}
    )


def test_no_limit_is_unlimited(api_calls) -> None:
    billflow_usage.record_usage(api_calls, CUSTOMER, 4)
    status = billflow_usage.check_limit(api_calls, CUSTOMER)
    assert (status.used, status.limit, status.remaining, status.exceeded, status.kind) == (
        4,
        None,
        None,
        False,
        None,
    )
    assert status.period_start == datetime(2026, 6, 1, tzinfo=UTC)
    assert status.period_end == datetime(2026, 7, 1, tzinfo=UTC)


def test_figures_at_and_past_the_edge(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=10)
    billflow_usage.record_usage(api_calls, CUSTOMER, 9)
    status = billflow_usage.check_limit(api_calls, CUSTOMER)
    assert (status.used, status.limit, status.remaining, status.exceeded) == (9, 10, 1, False)
    assert status.kind == "hard"
    assert billflow_usage.check_limit(api_calls, CUSTOMER, value=2).exceeded


def test_check_limit_never_writes(api_calls, django_assert_max_num_queries) -> None:
    UsageLimitFactory(metric=api_calls)
    with django_assert_max_num_queries(6) as captured:
        billflow_usage.check_limit("api-calls", CUSTOMER)
    assert all(q["sql"].lstrip().upper().startswith("SELECT") for q in captured.captured_queries)


def test_most_specific_scope_wins(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=100)
    UsageLimitFactory(metric=api_calls, limit=50, stripe_price_id="price_pro")
    subscribe(CUSTOMER, "price_pro")
    assert billflow_usage.check_limit(api_calls, CUSTOMER).limit == 50
    assert billflow_usage.check_limit(api_calls, "cus_Nosubscription").limit == 100
    UsageLimitFactory(metric=api_calls, limit=7, customer_id=CUSTOMER)
    assert billflow_usage.check_limit(api_calls, CUSTOMER).limit == 7


def test_a_cancelled_subscription_does_not_bring_its_price_limit(api_calls) -> None:
    UsageLimitFactory(metric=api_calls, limit=50, stripe_price_id="price_pro")
    subscribe(CUSTOMER, "price_pro", status="canceled")
    assert billflow_usage.check_limit(api_calls, CUSTOMER).limit is None


def test_count_and_last_metrics_project_by_their_formula(db) -> None:
    count = MetricFactory(key="requests", aggregation=Metric.Aggregation.COUNT)
    last = MetricFactory(key="storage", aggregation=Metric.Aggregation.LAST)
    UsageLimitFactory(metric=count, limit=2)
    UsageLimitFactory(metric=last, limit=5)
    UsageEventFactory.create_batch(2, metric=count, customer_id=CUSTOMER)
    UsageEventFactory(metric=last, customer_id=CUSTOMER, value=5)
    assert billflow_usage.check_limit(count, CUSTOMER).exceeded
    assert not billflow_usage.check_limit(last, CUSTOMER, value=5).exceeded
    assert billflow_usage.check_limit(last, CUSTOMER, value=6).exceeded


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"limit": -1}, "limit", "whole number of units >= 0"),
        ({"thresholds": [0, 80]}, "thresholds", "from 1 to 100"),
        ({"thresholds": [80, 101]}, "thresholds", "from 1 to 100"),
        ({"thresholds": "80"}, "thresholds", "must be a list"),
        ({"thresholds": [80, 80]}, "thresholds", "must not repeat"),
        ({"customer_id": CUSTOMER, "stripe_price_id": "price_x"}, "stripe_price_id", "not both"),
        ({"customer_id": "acct_1"}, "customer_id", "starts with 'cus_'"),
    ],
)
def test_bad_limits_are_refused_by_validation(api_calls, fields, field, message) -> None:
    limit = UsageLimit(metric=api_calls, **({"limit": 5} | fields))
    with pytest.raises(ValidationError) as raised:
        limit.full_clean()
    assert message in " ".join(raised.value.message_dict[field])


def test_a_licensed_metric_is_refused(db) -> None:
    limit = UsageLimit(metric=LicensedMetricFactory(key="seats"), limit=5)
    with pytest.raises(ValidationError, match="is licensed"):
        limit.full_clean()


def test_the_database_refuses_a_negative_limit(api_calls) -> None:
    with pytest.raises(IntegrityError):
        UsageLimit.objects.create(metric=api_calls, limit=-1)


def test_system_check_reports_limits_written_around_validation(db) -> None:
    UsageLimitFactory(metric=LicensedMetricFactory(key="seats"))
    UsageLimitFactory(metric=MetricFactory(key="calls"), thresholds=[150])
    with pytest.raises(SystemCheckError) as raised:
        call_command("check", databases=["default"])
    assert "billflow_usage.E401" in str(raised.value)
    assert "billflow_usage.E402" in str(raised.value)
