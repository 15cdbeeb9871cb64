"""Tracker declarations are checked by ``manage.py check``, never at import."""

import pytest
from django.core import checks

from billflow_usage.tracking.checks import check_trackers, tracker_messages
from tests.factories import MetricFactory
from tests.testapp.models import Member, Order
from tests.tracking.helpers import active_members, workspace_customer


def ids(messages):
    return sorted(message.id for message in messages)


def test_a_good_declaration_passes(tracker_registry, orders, seats):
    tracker_registry.track(Order, metric="orders", customer=workspace_customer, value=2)
    tracker_registry.track(Order, metric="orders", customer=workspace_customer, on=("delete",))
    tracker_registry.track_quantity(
        Member, metric="seats", customer=workspace_customer, quantity=active_members
    )

    assert tracker_messages(tracker_registry, databases=["default"]) == []


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ({"model": "nope.Model"}, "billflow_usage.E105"),
        ({"model": object}, "billflow_usage.E105"),
        ({"metric": 3}, "billflow_usage.E101"),
        ({"on": ("create", "craete")}, "billflow_usage.E103"),
        ({"on": ()}, "billflow_usage.E103"),
        ({"customer": 42}, "billflow_usage.E104"),
        ({"customer": "tests.tracking.helpers.nothing_here"}, "billflow_usage.E104"),
        ({"when": "not.a.module.function"}, "billflow_usage.E104"),
        ({"value": 1.5}, "billflow_usage.E107"),
        ({"value": True}, "billflow_usage.E107"),
        ({"delta": "nope"}, "billflow_usage.E106"),
        ({"delta": "workspace"}, "billflow_usage.E106"),
        ({"delta": "quantity", "value": 3}, "billflow_usage.W102"),
        ({"on": ("create", "delete"), "reverse_on_delete": True}, "billflow_usage.W102"),
    ],
)
def test_declaration_mistakes(tracker_registry, orders, declaration, expected):
    options = {"model": Order, "metric": "orders", "customer": workspace_customer}
    tracker_registry.track(**{**options, **declaration})

    messages = tracker_messages(tracker_registry, databases=["default"])

    assert ids(messages) == [expected]
    assert messages[0].hint


def test_a_bad_quantity_function(tracker_registry, seats):
    tracker_registry.track_quantity(Member, metric="seats", customer=workspace_customer, quantity=7)

    assert ids(tracker_messages(tracker_registry)) == ["billflow_usage.E104"]


def test_metrics_are_checked_against_the_database(tracker_registry, orders, seats):
    MetricFactory(key="retired", active=False)
    tracker_registry.track(Order, metric="missing", customer=workspace_customer)
    tracker_registry.track(Order, metric="seats", customer=workspace_customer)
    tracker_registry.track_quantity(
        Member, metric="orders", customer=workspace_customer, quantity=active_members
    )
    tracker_registry.track(Member, metric="retired", customer=workspace_customer)

    messages = tracker_messages(tracker_registry, databases=["default"])

    assert ids(messages) == [
        "billflow_usage.E101",
        "billflow_usage.E102",
        "billflow_usage.E102",
        "billflow_usage.W101",
    ]
    assert {message.obj for message in messages} == {Order, Member}


@pytest.mark.parametrize(
    ("declaration", "expected"),
    [
        ({}, []),
        ({"value": lambda order: 1}, []),
        ({"value": 5}, ["billflow_usage.E109"]),
        ({"delta": "quantity"}, ["billflow_usage.E109"]),
        ({"reverse_on_delete": True}, ["billflow_usage.W104"]),
    ],
)
def test_what_a_count_metric_cannot_bill(tracker_registry, db, declaration, expected):
    MetricFactory(key="logins", aggregation="count")
    tracker_registry.track(Order, metric="logins", customer=workspace_customer, **declaration)

    messages = tracker_messages(tracker_registry, databases=["default"])

    assert ids(messages) == expected
    assert all(message.hint for message in messages)


def test_reverse_on_delete_is_flagged_on_a_last_metric(tracker_registry, db):
    MetricFactory(key="storage", aggregation="last")
    tracker_registry.track(
        Order, metric="storage", customer=workspace_customer, reverse_on_delete=True
    )

    assert ids(tracker_messages(tracker_registry, databases=["default"])) == ["billflow_usage.W104"]


def test_without_databases_the_checks_never_query(tracker_registry, django_assert_num_queries, db):
    tracker_registry.track(Order, metric="missing", customer=workspace_customer)

    with django_assert_num_queries(0):
        assert tracker_messages(tracker_registry) == []
        assert tracker_messages(tracker_registry, databases=["other"]) == []


def test_duplicate_unfiltered_trackers_are_flagged(tracker_registry, orders):
    tracker_registry.track(Order, metric="orders", customer=workspace_customer)
    tracker_registry.track(Order, metric="orders", customer=workspace_customer, value=2)
    tracker_registry.track(
        Order, metric="orders", customer=workspace_customer, when=lambda o, created: True
    )

    assert ids(tracker_messages(tracker_registry)) == ["billflow_usage.W103"]


def test_app_configs_limit_the_trackers_checked(tracker_registry):
    from django.apps import apps

    tracker_registry.track(Order, metric="orders", customer=42)

    auth = [apps.get_app_config("auth")]
    assert tracker_messages(tracker_registry, app_configs=auth) == []
    testapp = [apps.get_app_config("testapp")]
    assert ids(tracker_messages(tracker_registry, app_configs=testapp)) == ["billflow_usage.E104"]


def test_the_check_is_registered_for_the_project_registry(default_registry, db):
    default_registry.track(Order, metric="missing", customer=workspace_customer)

    found = checks.run_checks(tags=["billflow_usage"], databases=["default"])

    assert "billflow_usage.E101" in ids(found)


def test_metrics_are_not_checked_unless_a_database_is_named(default_registry, db):
    # Django 6 hands every check all database aliases unless one is named (runserver, any
    # command): only database-tagged checks are left out, so a new database still starts.
    default_registry.track(Order, metric="missing", customer=workspace_customer)

    assert "billflow_usage.E101" not in ids(checks.run_checks())


def test_broken_settings_entries_are_reported(settings, default_registry):
    settings.BILLFLOW_USAGE = {
        **settings.BILLFLOW_USAGE,
        "TRACKERS": ["tests.tracking.helpers.declare_order_trackers", "tests.tracking.nope.f"],
    }

    [message] = check_trackers()

    assert message.id == "billflow_usage.E108"
    assert "tests.tracking.nope.f" in message.msg
