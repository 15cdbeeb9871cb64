"""Calling Stripe (through the configured backend) while a staff member waits for a page:
short timeouts, and failures turned into messages that say what happened, never a 500 and
never a secret."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from billflow_usage.backends import get_backend, get_backend_class
from billflow_usage.backends.base import BaseBackend, Outcome, ReadNotSupported

#: Seconds one Stripe request may take while the page waits.
REQUEST_TIMEOUT = 10.0


@dataclass(frozen=True)
class BackendFailure:
    """Why a call failed; ``unreachable`` means calling again now would fail the same way
    (network, outage, 5xx, 429, refused credentials, or a backend that can't read at
    all)."""

    unreachable: bool
    message: str


@contextmanager
def request_backend() -> Iterator[BaseBackend]:
    """The configured backend, with a timeout fit for a page, closed afterwards."""
    backend = get_backend(timeout=REQUEST_TIMEOUT)
    try:
        yield backend
    finally:
        backend.close()


def describe_failure(exc: Exception) -> BackendFailure:
    if isinstance(exc, ReadNotSupported):
        return BackendFailure(True, str(exc))
    result = _configured_class().result_for_error("read", exc)
    if result.rejects_credentials:
        return BackendFailure(True, result.message)
    if result.outcome == Outcome.RETRY:
        return BackendFailure(
            True, f"Stripe could not be reached ({result.code}: {result.message})."
        )
    return BackendFailure(False, f"Stripe refused the request ({result.code}: {result.message}).")


def _configured_class() -> type[BaseBackend]:
    """The configured backend class, which reads its own errors; when it can't be had, that
    failure is what is described, as any backend reads it."""
    try:
        return get_backend_class()
    except (ImportError, ImproperlyConfigured):
        return BaseBackend
