"""Meter event summaries: windows, formulas, alignment and pagination."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from billflow_usage.testing.fake_stripe import FakeStripe

HOUR = 3_600
DAY = 86_400


@pytest.fixture
def base(fake: FakeStripe) -> int:
    """UTC midnight two days ago: aligned to every window and inside the 35-day limit."""
    return (int(fake.clock.now()) // DAY - 2) * DAY


def record(
    client: stripe.StripeClient, event_name: str, customer: str, ts: int, value: str
) -> None:
    client.v1.billing.meter_events.create(
        {
            "event_name": event_name,
            "payload": {"stripe_customer_id": customer, "value": value},
            "timestamp": ts,
        }
    )


def summaries(
    client: stripe.StripeClient, meter_id: str, customer: str, start: int, end: int, **kw: Any
) -> list[Any]:
    params = {"customer": customer, "start_time": start, "end_time": end, **kw}
    return list(client.v1.billing.meters.event_summaries.list(meter_id, params).data)


@pytest.mark.parametrize(("formula", "expected"), [("sum", 10), ("count", 3), ("last", 2)])
def test_formulas(
    client: stripe.StripeClient,
    fake: FakeStripe,
    customer: str,
    base: int,
    formula: str,
    expected: int,
) -> None:
    meter = fake.create_meter("units", formula=formula)
    record(client, "units", customer, base + 120, "2")  # latest timestamp, sent first
    record(client, "units", customer, base + 60, "3")
    record(client, "units", customer, base, "5")
    [summary] = summaries(client, meter["id"], customer, base, base + HOUR)
    assert summary.object == "billing.meter_event_summary"
    assert summary.id.startswith("mtrusg_")
    assert summary.meter == meter["id"]
    assert (summary.start_time, summary.end_time) == (base, base + HOUR)
    assert summary.aggregated_value == expected


def test_start_inclusive_end_exclusive_and_per_customer(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, base: int
) -> None:
    meter = fake.create_meter("units")
    other = fake.create_customer()["id"]
    record(client, "units", customer, base, "1")
    record(client, "units", customer, base + 600, "10")
    record(client, "units", other, base + 60, "100")
    [summary] = summaries(client, meter["id"], customer, base, base + 600)
    assert summary.aggregated_value == 1


def test_cancelled_events_do_not_count(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, base: int
) -> None:
    meter = fake.create_meter("units")
    client.v1.billing.meter_events.create(
        {
            "event_name": "units",
            "payload": {"stripe_customer_id": customer, "value": "7"},
            "timestamp": base,
            "identifier": "gone",
        }
    )
    record(client, "units", customer, base, "1")
    client.v1.billing.meter_event_adjustments.create(
        {"event_name": "units", "type": "cancel", "cancel": {"identifier": "gone"}}
    )
    [summary] = summaries(client, meter["id"], customer, base, base + 60)
    assert summary.aggregated_value == 1


@pytest.mark.parametrize("field", ["start_time", "end_time"])
def test_times_must_be_minute_aligned(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, base: int, field: str
) -> None:
    meter = fake.create_meter("units")
    times = {"start_time": base, "end_time": base + HOUR}
    times[field] += 30
    with pytest.raises(stripe.InvalidRequestError) as exc:
        summaries(client, meter["id"], customer, times["start_time"], times["end_time"])
    assert exc.value.param == field


def test_hour_and_day_windows(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, base: int
) -> None:
    meter = fake.create_meter("units")
    record(client, "units", customer, base + 10, "1")
    record(client, "units", customer, base + HOUR + 10, "2")
    record(client, "units", customer, base + DAY + 10, "4")
    hours = summaries(
        client, meter["id"], customer, base, base + 3 * HOUR, value_grouping_window="hour"
    )
    assert [(s.start_time - base, s.aggregated_value) for s in hours] == [
        (0, 1),
        (HOUR, 2),
        (2 * HOUR, 0),
    ]
    days = summaries(
        client, meter["id"], customer, base, base + 2 * DAY, value_grouping_window="day"
    )
    assert [s.aggregated_value for s in days] == [3, 4]
    with pytest.raises(stripe.InvalidRequestError):
        summaries(
            client, meter["id"], customer, base + 60, base + HOUR, value_grouping_window="hour"
        )


def test_pagination(
    client: stripe.StripeClient, fake: FakeStripe, customer: str, base: int
) -> None:
    meter = fake.create_meter("units")
    for hour in range(5):
        record(client, "units", customer, base + hour * HOUR, str(hour))
    params = {
        "customer": customer,
        "start_time": base,
        "end_time": base + 5 * HOUR,
        "value_grouping_window": "hour",
        "limit": 2,
    }
    page = client.v1.billing.meters.event_summaries.list(meter["id"], params)
    assert page.has_more is True
    assert [s.aggregated_value for s in page.data] == [0, 1]
    following = client.v1.billing.meters.event_summaries.list(
        meter["id"],
        {**params, "starting_after": page.data[-1].id},
    )
    assert [s.aggregated_value for s in following.data] == [2, 3]
    assert [s.aggregated_value for s in page.auto_paging_iter()] == [0, 1, 2, 3, 4]
