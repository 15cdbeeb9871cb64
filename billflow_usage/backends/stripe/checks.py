"""The Stripe backend's own system checks (:meth:`StripeBackend.check`): a key to call Stripe
with, and never that key in clear text to another machine.

Run with the settings checks (:mod:`billflow_usage.checks`) whenever the configured backend
is the Stripe backend or a subclass of it; ``STRIPE_API_BASE`` and the key are read by
nothing else.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core import checks

from billflow_usage.addresses import is_base_url, is_loopback
from billflow_usage.conf import SETTINGS_NAME, billflow_settings


def stripe_checks() -> list[checks.CheckMessage]:
    return [*_api_key(), *_plain_http_base()]


def _api_key() -> list[checks.CheckMessage]:
    if billflow_settings.stripe_api_key:
        return []
    return [
        checks.Error(
            "The Stripe backend has no API key.",
            hint=f"Set {SETTINGS_NAME}['STRIPE_API_KEY'], or dj-stripe's STRIPE_TEST_SECRET_KEY "
            "/ STRIPE_LIVE_SECRET_KEY; for development use the console or locmem backend.",
            id="billflow_usage.E004",
        )
    ]


def _plain_http_base() -> list[checks.CheckMessage]:
    """A key sent over plain http:// can be read on its way, unless it never leaves this
    machine (a local fake Stripe): an Error for a live key, a Warning for a test key. A base
    that is not a URL at all is the settings checks' E005."""
    base = billflow_settings.STRIPE_API_BASE
    if not (base and is_base_url(base) and base.startswith("http://")):
        return []
    host = urlsplit(base).hostname or ""
    if is_loopback(host) or not billflow_settings.stripe_api_key:
        return []
    mode = "live" if billflow_settings.livemode else "test"
    message = (
        f"{SETTINGS_NAME}['STRIPE_API_BASE'] sends the Stripe {mode}-mode key in clear text "
        f"(plain http://) to {host}, which is not this machine."
    )
    hint = (
        "Use https:// for any host but this machine (127.0.0.0/8, ::1, localhost), or remove "
        "STRIPE_API_BASE to call Stripe itself."
    )
    if mode == "live":
        return [checks.Error(message, hint=hint, id="billflow_usage.E008")]
    return [checks.Warning(message, hint=hint, id="billflow_usage.W002")]
