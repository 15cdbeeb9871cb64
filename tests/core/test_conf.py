from billflow_usage.conf import DEFAULTS, billflow_settings


def test_defaults_apply_when_unset(settings):
    settings.BILLFLOW_USAGE = {}
    assert billflow_settings.METER_API == DEFAULTS["METER_API"] == "v1"
    assert billflow_settings.BACKEND == "billflow_usage.backends.stripe.StripeBackend"


def test_user_values_override_and_are_read_live(settings):
    settings.BILLFLOW_USAGE = {"METER_API": "v2"}
    assert billflow_settings.METER_API == "v2"
    settings.BILLFLOW_USAGE = {"METER_API": "legacy"}
    assert billflow_settings.METER_API == "legacy"


def test_unknown_attribute_is_an_error():
    import pytest

    with pytest.raises(AttributeError, match="no setting 'NOPE'"):
        billflow_settings.NOPE  # noqa: B018


def test_api_key_falls_back_to_dj_stripe(settings):
    settings.BILLFLOW_USAGE = {}
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_fromdjstripe"
    assert billflow_settings.stripe_api_key == "sk_test_fromdjstripe"
    assert billflow_settings.livemode is False
    settings.BILLFLOW_USAGE = {"STRIPE_API_KEY": "rk_live_own"}
    assert billflow_settings.stripe_api_key == "rk_live_own"
    assert billflow_settings.livemode is True
