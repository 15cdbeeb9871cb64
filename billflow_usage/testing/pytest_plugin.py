"""pytest plugin, loaded automatically when billflow-usage is installed.

It only imports the backend module (no models), so it is safe before Django is set up;
everything else is imported inside the fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from billflow_usage.backends import locmem

if TYPE_CHECKING:
    from billflow_usage.testing.fake_stripe import FakeStripe

#: The fake accepts any test-mode secret key; this one is never a real credential.
FAKE_STRIPE_API_KEY = "sk_test_billflow_fake"


@pytest.fixture(autouse=True)
def _billflow_usage_fresh_state() -> None:
    """Start every test with an empty locmem outbox, like Django's ``mail.outbox``, and no
    outage remembered from an earlier test's Stripe."""
    locmem.outbox.clear()
    from django.apps import apps

    if apps.ready:
        from billflow_usage.delivery.recovery import outage_watch

        outage_watch.forget()


@pytest.fixture
def usage_outbox() -> list[object]:
    """What the locmem backend would have sent during this test."""
    return locmem.outbox  # type: ignore[return-value]


@pytest.fixture(scope="session")
def fake_stripe_server() -> Iterator[FakeStripe]:
    """One fake Stripe server (real HTTP on a free local port) for the whole session."""
    from billflow_usage.testing.fake_stripe import FakeStripe

    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def fake_stripe(
    request: pytest.FixtureRequest, fake_stripe_server: FakeStripe
) -> Iterator[FakeStripe]:
    """The fake server, emptied, with ``BILLFLOW_USAGE`` pointing the Stripe backend at it.

    Uses pytest-django's ``settings`` fixture when available (so later changes in the test
    are undone too), else ``override_settings``.
    """
    fake_stripe_server.reset()
    overrides = {
        "BACKEND": "billflow_usage.backends.stripe.StripeBackend",
        "STRIPE_API_KEY": FAKE_STRIPE_API_KEY,
        "STRIPE_API_BASE": fake_stripe_server.url,
    }
    try:
        settings: Any = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:
        settings = None
    if settings is not None:
        settings.BILLFLOW_USAGE = {**getattr(settings, "BILLFLOW_USAGE", {}), **overrides}
        yield fake_stripe_server
        return
    from django.conf import settings as django_settings
    from django.test import override_settings

    current = getattr(django_settings, "BILLFLOW_USAGE", {})
    with override_settings(BILLFLOW_USAGE={**current, **overrides}):
        yield fake_stripe_server
