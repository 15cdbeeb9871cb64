"""``manage.py billflow_setup``: from the declared metrics to ready, against the fake Stripe
over HTTP. ``--check`` changes nothing and exits 3 while anything is missing."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import stripe
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError

import billflow_usage
from billflow_usage.models import Metric, SubscriptionItemLink, SyncReport
from billflow_usage.testing.fake_stripe import FakeStripe
from tests.factories import LicensedMetricFactory, MetricFactory
from tests.reconcile.conftest import Account

pytestmark = pytest.mark.django_db


def setup(*args: str) -> tuple[dict[str, Any], int]:
    """Run ``billflow_setup --json``; returns (findings document, exit code)."""
    out = io.StringIO()
    try:
        call_command("billflow_setup", "--json", *args, stdout=out)
    except CommandError as exc:
        return json.loads(out.getvalue()), exc.returncode
    return json.loads(out.getvalue()), 0


def missing(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in document["findings"] if f["state"] == "missing"]


def found(document: dict[str, Any], step: str, metric: str) -> list[dict[str, Any]]:
    return [f for f in document["findings"] if (f["step"], f["metric"]) == (step, metric)]


def meters(client: stripe.StripeClient) -> list[Any]:
    return list(client.v1.billing.meters.list().data)


@pytest.fixture
def fresh(fake_stripe: FakeStripe, configure: Callable[..., None]) -> Metric:
    """A metered metric as a new project declares it: no meter, no price."""
    return MetricFactory(key="api-calls", aggregation="count")


def test_from_a_declared_metric_to_ready(
    fresh: Metric, fake_stripe: FakeStripe, client: stripe.StripeClient
) -> None:
    checked, code = setup("--check")
    assert code == 3
    [meter] = found(checked, "meters", "api-calls")
    assert meter["state"] == "missing"
    assert meter["fix"] == "python manage.py billflow_setup"
    assert meters(client) == []

    made, code = setup()
    assert code == 0
    [created] = meters(client)
    assert (created.event_name, created.default_aggregation.formula) == ("api-calls", "count")
    fresh.refresh_from_db()
    assert fresh.stripe_meter_id == created.id
    assert [f["state"] for f in found(made, "meters", "api-calls")] == ["done"]
    assert found(made, "links", "api-calls")[0]["state"] == "note"  # nobody subscribed yet
    assert made["complete"]

    price = fake_stripe.create_price(meter=created.id)["id"]
    Metric.objects.filter(pk=fresh.pk).update(stripe_price_id=price)
    customer = fake_stripe.create_customer()["id"]
    subscription = fake_stripe.create_subscription(customer, price)
    assert setup("--check")[1] == 3  # the new subscription item is not linked yet

    linked, code = setup()
    assert code == 0
    link = SubscriptionItemLink.objects.get(customer_id=customer, metric=fresh)
    assert link.stripe_subscription_item_id == subscription["items"]["data"][0]["id"]
    assert any("created" in f["message"] for f in found(linked, "links", "api-calls"))

    again, code = setup("--check")
    assert (code, again["complete"], again["missing"]) == (0, True, 0)
    assert {f["state"] for f in again["findings"]} <= {"ok", "note"}
    assert len(meters(client)) == 1


def test_check_changes_nothing(fresh: Metric, client: stripe.StripeClient) -> None:
    setup("--check")
    setup("--check")

    fresh.refresh_from_db()
    assert fresh.stripe_meter_id == ""
    assert meters(client) == []
    assert not SyncReport.objects.exists()
    assert not SubscriptionItemLink.objects.exists()


def test_a_second_run_changes_nothing(fresh: Metric, client: stripe.StripeClient) -> None:
    setup()
    second, _ = setup()

    assert len(meters(client)) == 1
    assert not [f for f in second["findings"] if f["state"] == "done"]


def test_a_meter_in_stripe_with_the_event_name_is_adopted(
    fresh: Metric, fake_stripe: FakeStripe, client: stripe.StripeClient
) -> None:
    existing = fake_stripe.create_meter("api-calls", formula="count")["id"]

    checked, code = setup("--check")
    assert code == 3
    [meter] = found(checked, "meters", "api-calls")
    assert existing in meter["message"]
    assert "not stored" in meter["message"]

    setup()
    fresh.refresh_from_db()
    assert fresh.stripe_meter_id == existing
    assert len(meters(client)) == 1


def test_a_meter_that_counts_otherwise_is_reported(fresh: Metric, fake_stripe: FakeStripe) -> None:
    wrong = fake_stripe.create_meter("api-calls", formula="sum")["id"]
    Metric.objects.filter(pk=fresh.pk).update(stripe_meter_id=wrong)

    document, code = setup()

    assert code == 0  # without --check it reports, and leaves the exit code to --check
    [meter] = found(document, "meters", "api-calls")
    assert meter["state"] == "missing"
    assert "aggregates with 'sum' but the metric says 'count'" in meter["message"]
    assert "event name" in meter["fix"]
    assert setup("--check")[1] == 3


def test_a_licensed_metric_without_a_price_is_a_system_check_warning_and_missing(
    fake_stripe: FakeStripe, configure: Callable[..., None]
) -> None:
    LicensedMetricFactory(key="seats", without_price=True)

    [warning] = [
        m for m in checks.run_checks(databases=["default"]) if m.id == "billflow_usage.W301"
    ]
    assert "'seats' has no Stripe price" in warning.msg
    assert "stripe_price_id='price_...'" in warning.hint

    document, code = setup("--check")
    assert code == 3
    [price] = found(document, "prices", "seats")
    assert price["state"] == "missing"
    assert (price["message"], price["fix"]) == (warning.msg, warning.hint)


def test_a_metered_metric_without_meter_or_price_is_a_system_check_warning(db: None) -> None:
    MetricFactory(key="exports")
    LicensedMetricFactory(key="seats")  # has a price: nothing to say

    found_ids = [
        m.id
        for m in checks.run_checks(databases=["default"])
        if m.id.startswith("billflow_usage.W30")
    ]

    assert found_ids == ["billflow_usage.W302"]
    # Without a database named (runserver), the metrics are not read.
    assert not [m for m in checks.run_checks() if m.id.startswith("billflow_usage.W30")]


@pytest.mark.parametrize(
    ("metric", "price", "expected"),
    [
        ("seats", "metered_price", "a seat metric needs a licensed"),
        ("api_calls", "seat_price", "a metered metric needs a metered price"),
        ("api_calls", "other_meter", "but the metric's usage goes to meter"),
        ("api_calls", "price_gone", "Stripe has no price price_gone"),
    ],
)
def test_a_price_that_cannot_bill_its_metric_is_missing(
    account: Account, fake_stripe: FakeStripe, metric: str, price: str, expected: str
) -> None:
    prices = {
        "metered_price": account.metered_price,
        "seat_price": account.seat_price,
        "other_meter": fake_stripe.create_price(meter=fake_stripe.create_meter("other")["id"])[
            "id"
        ],
        "price_gone": "price_gone",
    }
    Metric.objects.filter(key=metric).update(stripe_price_id=prices[price])

    document, code = setup("--check")

    assert code == 3
    [finding] = found(document, "prices", metric)
    assert finding["state"] == "missing"
    assert expected in finding["message"]
    assert finding["fix"].startswith("make a ")


def test_the_prices_of_a_ready_account_are_checked(account: Account) -> None:
    Metric.objects.filter(key="api_calls").update(stripe_price_id=account.metered_price)

    document, code = setup("--check")

    assert code == 0
    assert found(document, "prices", "seats")[0]["message"].endswith("sets its items' quantity.")
    assert account.api_calls.stripe_meter_id in found(document, "prices", "api_calls")[0]["message"]


def test_unbilled_usage_is_missing_with_its_fix(account: Account) -> None:
    customer = account.customer()  # no subscription
    billflow_usage.record_usage("api_calls", customer, 4)

    document, code = setup("--check")

    assert code == 3
    [unbilled] = [f for f in missing(document) if f["step"] == "sync"]
    assert customer in unbilled["message"]
    assert unbilled["fix"].startswith("subscribe the customer to the metric's price")


def test_text_output_says_what_is_missing_and_the_fix(fresh: Metric) -> None:
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("billflow_setup", "--check", stdout=out)

    assert raised.value.returncode == 3
    text = out.getvalue()
    assert "[missing] meters api-calls: No active Stripe meter counts 'api-calls' events" in text
    assert "    fix: python manage.py billflow_setup" in text
    assert "Setup incomplete: 1 thing(s) missing" in text


def test_no_metric_at_all_is_missing(
    fake_stripe: FakeStripe, configure: Callable[..., None]
) -> None:
    document, code = setup("--check")

    assert code == 3
    [finding] = missing(document)
    assert finding["step"] == "metrics"
    assert "create a Metric" in finding["fix"]
