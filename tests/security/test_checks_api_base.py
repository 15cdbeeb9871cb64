"""STRIPE_API_BASE: a key never travels in clear text to another machine. Plain http:// to a
host that is not loopback is an Error with a live key and a Warning with a test key; https://
anywhere and http:// to 127.0.0.0/8, ::1 or localhost are fine. The key is never shown."""

import pytest

from billflow_usage.checks import check_settings

STRIPE = "billflow_usage.backends.stripe.StripeBackend"
LIVE_KEY = "sk_live_SECRETLIVEVALUE"
TEST_KEY = "sk_test_SECRETTESTVALUE"


def messages(settings, base, key):
    settings.BILLFLOW_USAGE = {"BACKEND": STRIPE, "STRIPE_API_BASE": base, "STRIPE_API_KEY": key}
    found = check_settings()
    for message in found:
        assert message.hint
        assert "SECRET" not in f"{message.msg} {message.hint}"
    return found


@pytest.mark.parametrize(
    "base",
    [
        "http://127.0.0.1:12111",
        "http://127.45.6.7:8080/stripe",
        "http://[::1]:12111",
        "http://localhost:12111",
        "http://LOCALHOST",
        "https://stripe-proxy.example.com",
        "https://10.0.0.5:8443",
        None,
    ],
)
@pytest.mark.parametrize("key", [LIVE_KEY, "rk_live_SECRETLIVEVALUE", TEST_KEY])
def test_loopback_or_https_is_fine(settings, base, key):
    assert messages(settings, base, key) == []


@pytest.mark.parametrize(
    "base",
    [
        "http://stripe-proxy.example.com",
        "http://10.0.0.5:12111",
        "http://[2001:db8::1]:12111",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io:12111",
        "http://0.0.0.0:12111",
    ],
)
@pytest.mark.parametrize("key", [LIVE_KEY, "rk_live_SECRETLIVEVALUE"])
def test_live_key_over_plain_http_to_another_host_is_an_error(settings, base, key):
    [message] = messages(settings, base, key)
    assert message.id == "billflow_usage.E008"
    assert message.is_serious()
    assert "live" in message.msg
    assert "https://" in message.hint


def test_test_key_over_plain_http_to_another_host_is_a_warning(settings):
    [message] = messages(settings, "http://stripe-proxy.example.com", TEST_KEY)
    assert message.id == "billflow_usage.W002"
    assert not message.is_serious()
    assert "stripe-proxy.example.com" in message.msg


def test_dj_stripe_live_key_counts_too(settings):
    settings.STRIPE_LIVE_MODE = True
    settings.STRIPE_LIVE_SECRET_KEY = LIVE_KEY
    settings.BILLFLOW_USAGE = {"BACKEND": STRIPE, "STRIPE_API_BASE": "http://10.1.2.3"}
    assert [m.id for m in check_settings()] == ["billflow_usage.E008"]


@pytest.mark.parametrize(
    "base",
    [
        # What a URL parser and an HTTP client could read differently is refused outright.
        "http://127.0.0.1@stripe-proxy.example.com",
        "http://user:SECRETPASSWORD@127.0.0.1:12111",
        "http://stripe-proxy.example.com\\@127.0.0.1",
        "http://127.0.0.1:12111?x=1",
        "http://127.0.0.1:12111#x",
        "http:// 127.0.0.1",
        "http://",
    ],
)
def test_ambiguous_bases_are_malformed(settings, base):
    found = messages(settings, base, TEST_KEY)
    assert "billflow_usage.E005" in [m.id for m in found]
    assert all("SECRETPASSWORD" not in f"{m.msg} {m.hint}" for m in found)
