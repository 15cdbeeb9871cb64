"""Trackers declared in settings and in autodiscovered ``usage.py`` modules."""

import logging
import sys

import pytest
from django.test import modify_settings

from billflow_usage.tracking.discovery import discover
from tests.factories import OrderFactory
from tests.testapp.models import Order
from tests.tracking.helpers import values

USAGE_MODULE = "tests.tracking.discoverable.usage"


@pytest.fixture
def trackers_setting(settings):
    def configure(*paths, autodiscover=False):
        settings.BILLFLOW_USAGE = {
            **settings.BILLFLOW_USAGE,
            "TRACKERS": list(paths),
            "AUTODISCOVER": autodiscover,
        }

    return configure


@pytest.fixture
def fresh_usage_module():
    """Forget the module, so autodiscovery imports (and declares) it again."""
    sys.modules.pop(USAGE_MODULE, None)
    yield
    sys.modules.pop(USAGE_MODULE, None)


def test_settings_trackers_are_declared(default_registry, orders, trackers_setting):
    trackers_setting("tests.tracking.helpers.declare_order_trackers")

    discover()

    assert default_registry.contains(Order, metric="orders")
    OrderFactory()
    assert values() == [1]


def test_a_broken_settings_entry_is_logged_and_skipped(default_registry, trackers_setting, caplog):
    trackers_setting(
        "tests.tracking.helpers.no_such_function",
        "tests.tracking.helpers.declare_order_trackers",
    )

    with caplog.at_level(logging.ERROR, logger="billflow_usage"):
        discover()

    assert default_registry.contains(Order)
    assert "no_such_function" in caplog.text


def test_ready_autodiscovers_usage_modules(default_registry, fresh_usage_module, trackers_setting):
    trackers_setting(autodiscover=True)

    # Installing an app re-runs every AppConfig.ready(), billflow_usage's included.
    with modify_settings(INSTALLED_APPS={"append": "tests.tracking.discoverable"}):
        [tracker] = default_registry.get_trackers()

    assert (tracker.model, tracker.metric) == (Order, "discovered")


def test_autodiscovery_can_be_turned_off(default_registry, fresh_usage_module, trackers_setting):
    trackers_setting(autodiscover=False)

    with modify_settings(INSTALLED_APPS={"append": "tests.tracking.discoverable"}):
        assert default_registry.get_trackers() == []
    assert USAGE_MODULE not in sys.modules


def test_ready_connects_trackers_declared_with_a_string_before_the_models(
    default_registry, monkeypatch, trackers_setting, orders
):
    from django.apps import apps

    import billflow_usage

    trackers_setting()
    monkeypatch.setattr(apps, "models_ready", False)
    tracker = billflow_usage.track(
        "testapp.Order", metric="orders", customer="tests.tracking.helpers.workspace_customer"
    )
    monkeypatch.undo()

    apps.get_app_config("billflow_usage").ready()

    assert tracker.model is Order
    OrderFactory()
    assert values() == [1]
