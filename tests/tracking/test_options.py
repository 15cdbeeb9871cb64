"""``track()`` and ``track_quantity()`` are typed once (``TrackOptions``,
``TrackQuantityOptions``) and still refuse, at the call, an option they don't take or miss
one they need, as a signature would; values are left to the system checks."""

from __future__ import annotations

from typing import Any

import pytest

from billflow_usage.tracking.metered import MeteredTracker
from billflow_usage.tracking.options import TrackOptions, TrackQuantityOptions
from billflow_usage.tracking.registry import TrackerRegistry
from billflow_usage.tracking.seats import QuantityTracker
from tests.testapp.models import Member, Order


def customer(instance: Any) -> str:
    return "cus_A"


def seats(customer_id: str) -> int:
    return 1


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda r: r.track(Order, metric="orders"), r"track\(\) missing .*'customer'"),
        (
            lambda r: r.track(Order, metric="orders", customer=customer, amount=3),
            r"track\(\) got an unexpected keyword argument 'amount'; it takes .*value",
        ),
        (
            lambda r: r.track(metric="orders", customer=customer, amount=3),
            r"unexpected keyword argument 'amount'",
        ),
        (
            lambda r: r.track_quantity(Member, metric="seats", customer=customer),
            r"track_quantity\(\) missing .*'quantity'",
        ),
        (
            lambda r: r.track_quantity(metric="seats", customer=customer, quantity=seats, on=()),
            r"track_quantity\(\) got an unexpected keyword argument 'on'",
        ),
    ],
)
def test_a_missing_or_unknown_option_is_a_type_error_at_the_call(
    tracker_registry: TrackerRegistry, declare: Any, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        declare(tracker_registry)

    assert tracker_registry.get_trackers() == []


def test_every_option_reaches_the_tracker(tracker_registry: TrackerRegistry) -> None:
    options: TrackOptions = {
        "metric": "orders",
        "customer": customer,
        "value": 3,
        "on": ("create", "delete"),
        "when": "tests.tracking.test_options.customer",
        "timestamp": "tests.tracking.test_options.customer",
        "identifier": "tests.tracking.test_options.customer",
        "delta": "quantity",
        "reverse_on_delete": True,
    }
    tracker = tracker_registry.track(Order, **options)

    assert isinstance(tracker, MeteredTracker)
    assert set(tracker.resolvers()) == {"customer", "when", "timestamp", "identifier"}
    assert (tracker.value, tracker.on, tracker.delta) == (3, ("create", "delete"), "quantity")
    assert tracker.actions == {"create", "delete"}
    assert tracker.reverse_on_delete is True


def test_the_defaults(tracker_registry: TrackerRegistry) -> None:
    tracker = tracker_registry.track(Order, metric="orders", customer=customer)
    assert (tracker.value, tracker.on, tracker.when, tracker.timestamp) == (
        1,
        ("create",),
        None,
        None,
    )
    assert (tracker.identifier, tracker.delta, tracker.reverse_on_delete) == (None, None, False)

    quantity: TrackQuantityOptions = {"metric": "seats", "customer": customer, "quantity": seats}
    seat_tracker = tracker_registry.track_quantity(Member, **quantity)
    assert isinstance(seat_tracker, QuantityTracker)
    assert seat_tracker.quantity("cus_A") == 1
