"""billflow_sync never creates drift: after an ``--apply`` run repaired what it found, a second
``--apply`` run finds nothing to do and sends Stripe nothing, whatever the drift was (usage
Stripe lost, usage Stripe got from elsewhere, on sum, count and last meters; seat counts, stray
desired quantities and quantities changed in Stripe)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import billflow_usage
from billflow_usage.delivery import deliver_pending
from billflow_usage.models import UsageEvent
from billflow_usage.tracking import tracking_disabled
from tests.clock import Clock
from tests.factories import MemberFactory, MetricFactory, WorkspaceFactory
from tests.reconcile.conftest import SETTLED, Account, ago, sync_exit, sync_json
from tests.reconcile.test_metered import client_cancel

pytestmark = pytest.mark.django_db

FORMULAS = ("sum", "count", "last")
WRITES = ("/v1/billing/meter_events", "/v1/billing/meter_event_adjustments")


@pytest.fixture
def prices(account: Account, default_registry: Any) -> dict[str, str]:
    """A metered price per formula (sum is the account's api_calls), and a seat tracker."""
    found = {"sum": account.metered_price}
    for formula in ("count", "last"):
        meter = account.fake.create_meter(f"m_{formula}", formula=formula)
        found[formula] = account.fake.create_price(meter=meter["id"])["id"]
        MetricFactory(
            key=f"m_{formula}",
            event_name=f"m_{formula}",
            aggregation=formula,
            stripe_meter_id=meter["id"],
        )
    default_registry.track_quantity(
        "testapp.Member",
        metric="seats",
        customer="tests.tracking.helpers.workspace_customer",
        quantity="tests.tracking.helpers.active_members",
    )
    return found


@st.composite
def drift(draw: st.DrawFn) -> dict[str, Any]:
    formula = draw(st.sampled_from(FORMULAS))
    # A count meter takes one event at a time: value 1.
    value = st.just(1) if formula == "count" else st.integers(1, 1000)
    values = draw(st.lists(value, min_size=1, max_size=4))
    return {
        "formula": formula,
        "values": values,
        "lost": draw(st.sets(st.integers(0, len(values) - 1))),
        # Events from elsewhere on a count meter can't be undone (a credit note's job).
        "extra": [] if formula == "count" else draw(st.lists(st.integers(1, 1000), max_size=2)),
        "members": draw(st.integers(0, 4)),
        "in_stripe": draw(st.integers(0, 4)),
        "desired": draw(st.integers(0, 4)),
    }


def event_name(formula: str) -> str:
    return "api_calls" if formula == "sum" else f"m_{formula}"


def make_drift(
    account: Account, client: stripe.StripeClient, clock: Clock, price: str, case: dict[str, Any]
) -> str:
    name = event_name(case["formula"])
    customer = account.customer()
    account.subscribe(customer, price=price)
    account.subscribe(customer, price=account.seat_price, quantity=case["in_stripe"])
    with tracking_disabled():
        workspace = WorkspaceFactory(stripe_customer_id=customer)
        MemberFactory.create_batch(case["members"], workspace=workspace)
    rows = [
        billflow_usage.record_usage(name, customer, value, timestamp=ago(hours=30 - index))
        for index, value in enumerate(case["values"])
    ]
    deliver_pending()
    clock.advance(SETTLED)
    client_cancel(account, name, [rows[index].identifier for index in case["lost"]])
    for index, value in enumerate(case["extra"]):
        client.v1.billing.meter_events.create(
            {
                "event_name": name,
                "payload": {"stripe_customer_id": customer, "value": str(value)},
                "timestamp": int(ago(hours=10 + index).timestamp()),
            }
        )
    sync_json("--customer", customer)  # finds the seat item
    billflow_usage.set_quantity("seats", customer, case["desired"])  # around the tracker
    return customer


def stripe_writes(account: Account) -> int:
    return sum(account.fake.request_count(path, "POST") for path in WRITES) + (
        account.fake.request_count("/v1/subscription_items/", "POST")
    )


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=drift())
def test_a_second_apply_run_finds_nothing_to_do(
    account: Account,
    client: stripe.StripeClient,
    clock: Clock,
    prices: dict[str, str],
    case: dict[str, Any],
) -> None:
    customer = make_drift(account, client, clock, prices[case["formula"]], case)
    values = case["values"]

    repaired, code = sync_exit("--apply", "--customer", customer)

    assert (code, repaired["summary"]["drift_remaining"]) == (0, 0), repaired
    expected = {"sum": sum(values), "count": len(values), "last": values[-1]}[case["formula"]]
    assert account.fake.meter_event_total(event_name(case["formula"]), customer) == expected
    [seat_item] = [
        item
        for sub in client.v1.subscriptions.list({"customer": customer}).data
        for item in sub["items"]["data"]
        if item["price"]["id"] == account.seat_price
    ]
    assert seat_item["quantity"] == case["members"]

    writes, rows = stripe_writes(account), UsageEvent.objects.count()
    again, code = sync_exit("--apply", "--customer", customer)

    assert code == 0
    assert [e for e in again["metered"] if e["status"] != "skipped"] == []
    assert again["seats"] == []
    assert (stripe_writes(account), UsageEvent.objects.count()) == (writes, rows)
