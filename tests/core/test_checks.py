"""Every misconfiguration is a system check message with a hint; secrets never appear."""

import pytest
from django.core import checks

from billflow_usage.checks import check_settings

BASE = {"BACKEND": "billflow_usage.backends.locmem.LocMemBackend"}


def ids(settings, **billflow):
    settings.BILLFLOW_USAGE = BASE | billflow
    messages = check_settings()
    assert all(message.hint for message in messages)
    return [message.id for message in messages]


def test_valid_settings_pass(settings):
    assert ids(settings) == []


def test_defaults_with_dj_stripe_key_pass(settings):
    settings.BILLFLOW_USAGE = {}
    assert check_settings() == []


def test_registered_with_django():
    assert check_settings in checks.registry.registry.get_checks()


def test_not_a_dict(settings):
    settings.BILLFLOW_USAGE = ["BACKEND"]
    assert [m.id for m in check_settings()] == ["billflow_usage.E006"]


@pytest.mark.parametrize(
    "path", ["billflow_usage.backends.nope.Backend", "billflow_usage.conf.BillflowSettings"]
)
def test_bad_backend(settings, path):
    assert ids(settings, BACKEND=path) == ["billflow_usage.E001"]


def test_bad_meter_api(settings):
    assert ids(settings, METER_API="v3") == ["billflow_usage.E002"]


def test_bad_delivery(settings):
    assert ids(settings, DELIVERY="cron") == ["billflow_usage.E003"]


def test_stripe_backend_without_key(settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    assert ids(settings, BACKEND="billflow_usage.backends.stripe.StripeBackend") == [
        "billflow_usage.E004"
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BATCH_SIZE", 0),
        ("BATCH_SIZE", "500"),
        ("BATCH_SIZE", True),
        ("CLAIM_LEASE", -1),
        ("ON_COMMIT_TIMEOUT", 0),
        ("AGGREGATION_WINDOW", -5),
        ("MAX_ATTEMPTS", 1.5),
        ("SEAT_UPDATES_PER_HOUR", 500),
        ("DEFAULT_PRORATION_BEHAVIOR", "sometimes"),
        ("TRACKERS", "myapp.usage.declare"),
        ("AUTODISCOVER", "yes"),
        ("STRIPE_API_BASE", "localhost:12111"),
        ("STRIPE_ACCOUNT", "cus_123"),
        ("STRIPE_API_KEY", "pk_test_123"),
    ],
)
def test_malformed_values(settings, name, value):
    assert ids(settings, **{name: value}) == ["billflow_usage.E005"]


def test_retry_base_above_cap(settings):
    assert ids(settings, RETRY_BASE_DELAY=10, RETRY_MAX_DELAY=5) == ["billflow_usage.E005"]


def test_unknown_key_warns_with_suggestion(settings):
    settings.BILLFLOW_USAGE = BASE | {"METERAPI": "v2"}
    [message] = check_settings()
    assert message.id == "billflow_usage.W001"
    assert "'METER_API'" in message.hint


def test_key_never_shown(settings):
    settings.BILLFLOW_USAGE = BASE | {"STRIPE_API_KEY": "pk_live_SECRETVALUE"}
    [message] = check_settings()
    assert "SECRETVALUE" not in message.msg + message.hint


def test_celery_delivery_needs_celery(settings, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "celery" else real(name, *a)
    )
    assert ids(settings, DELIVERY="celery") == ["billflow_usage.E007"]
