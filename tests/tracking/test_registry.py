"""The registry: declaring, decorating, introspecting and untracking, with exact receivers."""

from django.apps import apps
from django.db.models.signals import post_delete, post_init, post_save, pre_save

from billflow_usage.tracking.metered import MeteredTracker
from billflow_usage.tracking.registry import TrackerRegistry
from billflow_usage.tracking.seats import QuantityTracker
from tests.factories import OrderFactory
from tests.testapp.models import Member, Order
from tests.tracking.helpers import active_members, values, workspace_customer


def test_track_is_a_class_decorator(tracker_registry, orders):
    decorate = tracker_registry.track(metric="orders", customer=workspace_customer)

    assert decorate(Order) is Order
    [tracker] = tracker_registry.get_trackers(Order)
    assert isinstance(tracker, MeteredTracker)
    OrderFactory()
    assert values() == [1]


def test_track_quantity_is_a_class_decorator(tracker_registry):
    decorate = tracker_registry.track_quantity(
        metric="seats", customer=workspace_customer, quantity=active_members
    )

    assert decorate(Member) is Member
    assert isinstance(tracker_registry.quantity_tracker("seats"), QuantityTracker)


def test_a_model_string_names_the_same_model(tracker_registry, orders):
    tracker = tracker_registry.track("testapp.order", metric="orders", customer=workspace_customer)

    assert tracker.model is Order
    assert tracker_registry.contains(Order)
    assert tracker_registry.contains("testapp.Order", metric="orders")
    assert not tracker_registry.contains(Order, metric="units")
    assert tracker_registry.get_models() == [Order]


def test_model_strings_wait_until_the_models_are_loaded(tracker_registry, monkeypatch):
    monkeypatch.setattr(apps, "models_ready", False)
    tracker = tracker_registry.track("testapp.Order", metric="orders", customer=workspace_customer)
    assert tracker.model is None
    assert not post_save.has_listeners(Order)

    monkeypatch.setattr(apps, "models_ready", True)
    tracker_registry.connect_pending()

    assert tracker.model is Order
    assert post_save.has_listeners(Order)


def test_untrack_disconnects_the_receivers(tracker_registry, orders):
    tracker = tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, on=("create", "delete")
    )
    assert post_save.has_listeners(Order)
    assert post_delete.has_listeners(Order)

    assert tracker_registry.untrack(Order) == [tracker]

    assert not post_save.has_listeners(Order)
    assert not post_delete.has_listeners(Order)
    assert not tracker_registry.contains(Order)
    OrderFactory().delete()
    assert values() == []


def test_untrack_one_metric_or_one_tracker(tracker_registry, orders, units):
    counting = tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    units_tracker = tracker_registry.track(Order, metric="units", customer=workspace_customer)
    extra = tracker_registry.track(Order, metric="orders", customer=workspace_customer, value=9)

    assert tracker_registry.untrack(Order, metric="units") == [units_tracker]
    assert tracker_registry.untrack(extra) == [extra]

    assert tracker_registry.get_trackers() == [counting]
    OrderFactory()
    assert values() == [1]


def test_only_the_receivers_needed_are_connected(tracker_registry):
    """post_delete costs Django's fast deletes and post_init runs for every loaded row."""
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    assert post_save.has_listeners(Order)
    assert not post_delete.has_listeners(Order)
    assert not post_init.has_listeners(Order)
    assert not pre_save.has_listeners(Order)

    tracker_registry.track(Order, metric="units", customer=workspace_customer, delta="quantity")
    assert post_init.has_listeners(Order)
    assert pre_save.has_listeners(Order)

    tracker_registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )
    assert post_delete.has_listeners(Member)
    assert post_init.has_listeners(Member)


def test_registries_are_independent(tracker_registry, default_registry, orders):
    """Each registry has its own dispatch_uids, so clearing one leaves the other connected."""
    other = TrackerRegistry()
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    other.track(Order, metric="orders", customer=workspace_customer, on=("update",))
    other.clear()

    assert post_save.has_listeners(Order)
    assert default_registry.get_trackers() == []
    OrderFactory().save()
    assert values() == [1]


def test_declaring_never_raises(tracker_registry):
    tracker_registry.track("nope.Model", metric=3, customer=None, on=("craete",), value="x")
    tracker_registry.track(object, metric="orders", customer=workspace_customer, delta="nope")
    tracker_registry.track_quantity("testapp", metric="seats", customer=1, quantity=2)

    assert len(tracker_registry.get_trackers()) == 3
    assert tracker_registry.get_models() == []


def test_clear_removes_everything(tracker_registry):
    tracker_registry.track(Order, metric="orders", customer=workspace_customer, delta="quantity")
    tracker_registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )

    tracker_registry.clear()

    assert tracker_registry.get_trackers() == []
    for signal in (post_init, pre_save, post_save, post_delete):
        assert not signal.has_listeners(Order)
        assert not signal.has_listeners(Member)


def test_repr_names_the_declaration(tracker_registry):
    tracker = tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    seats = tracker_registry.track_quantity(
        "testapp.Member", metric="seats", customer=workspace_customer, quantity=active_members
    )

    assert repr(tracker) == "track(testapp.Order, metric='orders')"
    assert repr(seats) == "track_quantity(testapp.Member, metric='seats')"
