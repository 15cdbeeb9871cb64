"""The configured backend checks its own settings (``BaseBackend.check()``): the Stripe
backend's E004, E008 and W002 follow the class, not one spelling of its dotted path, and a
backend of the project's own adds its checks the same way."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks

from billflow_usage.backends.locmem import LocMemBackend
from billflow_usage.backends.stripe import StripeBackend
from billflow_usage.checks import check_settings
from billflow_usage.services.backend_access import describe_failure

LIVE_KEY = "sk_live_SECRETLIVEVALUE"


class ProjectStripeBackend(StripeBackend):
    """A project's own Stripe backend (a proxy's headers, say)."""


class CheckedBackend(LocMemBackend):
    @classmethod
    def check(cls, **kwargs: Any) -> list[checks.CheckMessage]:
        return [checks.Warning("Not ready.", hint="Make it ready.", id="myapp.W001")]


@pytest.mark.parametrize(
    "path",
    [
        "billflow_usage.backends.stripe.StripeBackend",
        "billflow_usage.backends.stripe.backend.StripeBackend",
        f"{__name__}.ProjectStripeBackend",
    ],
)
def test_any_stripe_backend_without_a_key_is_e004(settings: Any, path: str) -> None:
    settings.STRIPE_TEST_SECRET_KEY = ""
    settings.BILLFLOW_USAGE = {"BACKEND": path}
    assert [m.id for m in check_settings()] == ["billflow_usage.E004"]


def test_a_subclass_keeps_the_clear_text_key_check(settings: Any) -> None:
    settings.BILLFLOW_USAGE = {
        "BACKEND": f"{__name__}.ProjectStripeBackend",
        "STRIPE_API_BASE": "http://stripe-proxy.example.com",
        "STRIPE_API_KEY": LIVE_KEY,
    }
    [message] = check_settings()
    assert message.id == "billflow_usage.E008"
    assert "SECRET" not in f"{message.msg} {message.hint}"


def test_stripe_address_is_not_checked_for_a_backend_that_never_calls_it(settings: Any) -> None:
    """Nothing but the Stripe backend reads STRIPE_API_BASE: with locmem, no key travels."""
    settings.BILLFLOW_USAGE = {
        "BACKEND": "billflow_usage.backends.locmem.LocMemBackend",
        "STRIPE_API_BASE": "http://stripe-proxy.example.com",
        "STRIPE_API_KEY": LIVE_KEY,
    }
    assert check_settings() == []


def test_a_project_backend_adds_its_own_checks(settings: Any) -> None:
    settings.BILLFLOW_USAGE = {"BACKEND": f"{__name__}.CheckedBackend"}
    assert [m.id for m in check_settings()] == ["myapp.W001"]


@pytest.mark.parametrize(
    "path", ["billflow_usage.backends.nope.Backend", "billflow_usage.conf.BillflowSettings"]
)
def test_a_backend_that_cannot_be_had_is_only_e001(settings: Any, path: str) -> None:
    settings.BILLFLOW_USAGE = {"BACKEND": path}
    assert [m.id for m in check_settings()] == ["billflow_usage.E001"]


@pytest.mark.parametrize(
    "path", ["billflow_usage.backends.nope.Backend", "billflow_usage.conf.BillflowSettings"]
)
def test_the_admin_describes_a_failure_whatever_the_backend_setting(
    settings: Any, path: str
) -> None:
    """The admin reads failures with the configured class; one it can't have is described
    as any backend's failure, never raised from the page."""
    settings.BILLFLOW_USAGE = {"BACKEND": path}
    failure = describe_failure(ConnectionError("refused sk_live_SECRETLIVEVALUE"))
    assert failure.unreachable
    assert "ConnectionError" in failure.message
    assert "SECRETLIVEVALUE" not in failure.message
