"""System checks for ``BILLFLOW_USAGE`` (``billflow_usage.E001``...), each with a hint.

Misconfiguration is reported here, by ``manage.py check`` and at server start, rather than by
exceptions at import time. What only the configured backend knows (its credentials, its
address) it checks itself (:meth:`BaseBackend.check`), called from here.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
from collections.abc import Callable, Iterator
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from billflow_usage import bounds
from billflow_usage.addresses import is_base_url
from billflow_usage.conf import DEFAULTS, SETTINGS_NAME, billflow_settings

METER_APIS = ("v1", "v2", "legacy")
DELIVERY_MODES = ("on_commit", "worker", "celery")
PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")
STRIPE_SEAT_UPDATES_PER_HOUR = 200
#: One sending thread per request in flight; past this, threads cost more than they hide.
MAX_DELIVERY_CONCURRENCY = 64
#: Settings whose values are never shown in a message.
SECRET_SETTINGS = ("STRIPE_API_KEY", "METER_WEBHOOK_SECRET")


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive_number(value: Any) -> bool:
    return _finite_number(value) and value > 0


def _non_negative_number(value: Any) -> bool:
    return _finite_number(value) and value >= 0


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _optional_prefixed(*prefixes: str) -> Callable[[Any], bool]:
    return lambda value: value is None or (isinstance(value, str) and value.startswith(prefixes))


def _optional_base_url(value: Any) -> bool:
    """None, or a base URL (:func:`~billflow_usage.addresses.is_base_url`)."""
    return value is None or is_base_url(value)


#: Setting name -> (is it well-formed?, what a good value looks like).
VALUE_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "STRIPE_API_KEY": (
        _optional_prefixed("sk_", "rk_"),
        "a Stripe secret or restricted key ('sk_...' / 'rk_...'), or None for dj-stripe's",
    ),
    "STRIPE_API_BASE": (
        _optional_base_url,
        "a base URL such as 'http://127.0.0.1:12111' (scheme, host, port, path: no user, "
        "query or fragment), or None for Stripe itself",
    ),
    "STRIPE_ACCOUNT": (_optional_prefixed("acct_"), "a connected account ID 'acct_...' or None"),
    "ON_COMMIT_TIMEOUT": (_positive_number, "a number of seconds greater than 0"),
    "BATCH_SIZE": (bounds.BATCH_SIZE.accepts, bounds.BATCH_SIZE.expected),
    "DELIVERY_CONCURRENCY": (
        lambda v: _positive_int(v) and v <= MAX_DELIVERY_CONCURRENCY,
        f"a whole number of parallel Stripe requests from 1 to {MAX_DELIVERY_CONCURRENCY}",
    ),
    "CLAIM_LEASE": (_positive_number, "a number of seconds greater than 0"),
    "AGGREGATION_WINDOW": (_non_negative_number, "a number of seconds, 0 to turn it off"),
    "MAX_ATTEMPTS": (_positive_int, "a whole number greater than 0"),
    "RETRY_BASE_DELAY": (_positive_number, "a number of seconds greater than 0"),
    "RETRY_MAX_DELAY": (_positive_number, "a number of seconds greater than 0"),
    "SEAT_UPDATES_PER_HOUR": (
        lambda v: _positive_int(v) and v <= STRIPE_SEAT_UPDATES_PER_HOUR,
        f"a whole number from 1 to {STRIPE_SEAT_UPDATES_PER_HOUR} (Stripe's own limit)",
    ),
    "DEFAULT_PRORATION_BEHAVIOR": (
        lambda v: v in PRORATION_BEHAVIORS,
        "one of " + ", ".join(repr(p) for p in PRORATION_BEHAVIORS),
    ),
    "TRACKERS": (
        lambda v: isinstance(v, list | tuple) and all(isinstance(p, str) for p in v),
        "a list of dotted paths to functions that declare trackers",
    ),
    "AUTODISCOVER": (lambda v: isinstance(v, bool), "True or False"),
    "SETTLING_WINDOW": (bounds.SETTLING_WINDOW.accepts, bounds.SETTLING_WINDOW.expected),
    "SYNC_RATE_LIMIT": (bounds.RATE_LIMIT.accepts, bounds.RATE_LIMIT.expected),
    "DJSTRIPE_MAX_AGE": (
        lambda v: v is None or _non_negative_number(v),
        "a number of seconds, or None to always ask Stripe",
    ),
    "METER_WEBHOOK_SECRET": (_optional_prefixed("whsec_"), "a signing secret 'whsec_...' or None"),
    "METER_WEBHOOK_TOLERANCE": (
        _positive_number,
        "a number of seconds greater than 0 (Stripe's libraries use 300)",
    ),
    "STATUS_MAX_LAG": (bounds.STATUS_SECONDS.accepts, bounds.STATUS_SECONDS.expected),
    "STATUS_MAX_FAILED": (bounds.STATUS_MAX_FAILED.accepts, bounds.STATUS_MAX_FAILED.expected),
    "STATUS_UNREACHABLE_AFTER": (bounds.STATUS_SECONDS.accepts, bounds.STATUS_SECONDS.expected),
}


@checks.register("billflow_usage")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    project = [*_unknown_settings(), *_djstripe_installed()]
    raw = getattr(settings, SETTINGS_NAME, {})
    if not isinstance(raw, dict):
        return [
            *project,
            checks.Error(
                f"{SETTINGS_NAME} must be a dict, got {type(raw).__name__}.",
                hint=f"Set {SETTINGS_NAME} = {{'BACKEND': ...}} in your settings.",
                id="billflow_usage.E006",
            ),
        ]
    return [
        *project,
        *_unknown_keys(raw),
        *_backend(),
        *_choice("METER_API", METER_APIS, "billflow_usage.E002"),
        *_choice("DELIVERY", DELIVERY_MODES, "billflow_usage.E003"),
        *_celery(),
        *_backend_checks(),
        *_values(raw),
    ]


def _unknown_settings() -> Iterator[checks.CheckMessage]:
    """A misspelt dict (``BILLFLOW_USEAGE``) is read by nothing: the project runs on the
    defaults, which call the real Stripe, not the fake its STRIPE_API_BASE named."""
    for name in dir(settings):
        if name == SETTINGS_NAME or not name.isupper():
            continue
        if name.startswith("BILLFLOW") or difflib.get_close_matches(
            name, [SETTINGS_NAME], n=1, cutoff=0.85
        ):
            yield checks.Warning(
                f"settings.{name} is not read by billflow_usage, which reads only "
                f"{SETTINGS_NAME}: its values are ignored.",
                hint=f"Did you mean {SETTINGS_NAME}?",
                id="billflow_usage.W003",
            )


def _djstripe_installed() -> Iterator[checks.CheckMessage]:
    if not apps.is_installed("djstripe"):
        yield checks.Error(
            "dj-stripe is not in INSTALLED_APPS: billflow_usage reads Stripe keys, "
            "subscriptions and webhooks through it, so billflow_sync and delivery would fail.",
            hint="Add 'djstripe' to INSTALLED_APPS and run migrate.",
            id="billflow_usage.E009",
        )


def _unknown_keys(raw: dict[str, Any]) -> Iterator[checks.CheckMessage]:
    for key in raw:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else "Known keys: " + ", ".join(DEFAULTS)
            yield checks.Warning(
                f"{SETTINGS_NAME}[{key!r}] is not a setting of billflow_usage and is ignored.",
                hint=hint,
                id="billflow_usage.W001",
            )


def _backend() -> Iterator[checks.CheckMessage]:
    from billflow_usage.backends.base import BaseBackend

    path = billflow_settings.BACKEND
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        yield checks.Error(
            f"{SETTINGS_NAME}['BACKEND'] = {path!r} cannot be imported: {exc}.",
            hint="Use 'billflow_usage.backends.stripe.StripeBackend', "
            "'billflow_usage.backends.locmem.LocMemBackend', "
            "'billflow_usage.backends.console.ConsoleBackend' or your own BaseBackend subclass.",
            id="billflow_usage.E001",
        )
        return
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        yield checks.Error(
            f"{SETTINGS_NAME}['BACKEND'] = {path!r} is not a BaseBackend subclass.",
            hint="Subclass billflow_usage.backends.base.BaseBackend.",
            id="billflow_usage.E001",
        )


def _choice(name: str, allowed: tuple[str, ...], check_id: str) -> Iterator[checks.CheckMessage]:
    value = getattr(billflow_settings, name)
    if value not in allowed:
        yield checks.Error(
            f"{SETTINGS_NAME}[{name!r}] = {value!r} is not one of {', '.join(allowed)}.",
            hint=f"Set {SETTINGS_NAME}[{name!r}] to one of: " + ", ".join(map(repr, allowed)),
            id=check_id,
        )


def _celery() -> Iterator[checks.CheckMessage]:
    if billflow_settings.DELIVERY == "celery" and importlib.util.find_spec("celery") is None:
        yield checks.Error(
            f"{SETTINGS_NAME}['DELIVERY'] is 'celery' but Celery is not installed.",
            hint="pip install 'billflow-usage[celery]', or use DELIVERY 'worker'.",
            id="billflow_usage.E007",
        )


def _backend_checks() -> Iterator[checks.CheckMessage]:
    """The configured backend's own checks (the Stripe backend's: E004, E008, W002); none
    when it can't be imported or is no backend (E001 says so)."""
    from billflow_usage.backends import get_backend_class

    try:
        backend_class = get_backend_class()
    except (ImportError, ImproperlyConfigured):
        return
    yield from backend_class.check()


def _values(raw: dict[str, Any]) -> Iterator[checks.CheckMessage]:
    for name, (is_valid, expected) in VALUE_RULES.items():
        if name in raw and not is_valid(raw[name]):
            yield checks.Error(
                f"{SETTINGS_NAME}[{name!r}] = {_shown(name, raw[name])} is malformed.",
                hint=f"Expected {expected}.",
                id="billflow_usage.E005",
            )
    base, cap = billflow_settings.RETRY_BASE_DELAY, billflow_settings.RETRY_MAX_DELAY
    if _positive_number(base) and _positive_number(cap) and base > cap:
        yield checks.Error(
            f"{SETTINGS_NAME}['RETRY_BASE_DELAY'] ({base}) is larger than RETRY_MAX_DELAY ({cap}).",
            hint="The first retry delay must not exceed the cap.",
            id="billflow_usage.E005",
        )


def _shown(name: str, value: Any) -> str:
    """A malformed value as a message may show it: never a secret, nor a URL's password."""
    if name in SECRET_SETTINGS:
        return "(a value)"
    if isinstance(value, str) and "@" in value:
        return "(a value with a user or password)"
    return repr(value)
