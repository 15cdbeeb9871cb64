"""Turn what stripe-python raises into a :class:`~billflow_usage.backends.base.Result`.

The delivery engine owns retries (the client runs with ``max_network_retries=0``), so this is
the one place that decides whether an answer means "delivered", "try again later" or "needs a
human", following Stripe's documented semantics.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import stripe

from billflow_usage.backends.base import (
    CREDENTIALS_REJECTED,
    PERMISSION_DENIED,
    BaseBackend,
    CredentialsRejected,
    Outcome,
    Result,
)
from billflow_usage.redaction import redact

#: Stripe's answer to a meter event whose identifier it has already accepted.
DUPLICATE_IDENTIFIER = "An event already exists with identifier"
#: How an answer to cancelling a meter event that is cancelled already reads. Stripe doesn't
#: document it (it may as well accept the repeat, which needs nothing): a refusal saying so
#: means the event is cancelled.
ALREADY_CANCELLED = re.compile(r"already (been )?cancell?ed", re.IGNORECASE)
#: The code of a request that never got Stripe's answer (refused, reset, timed out).
API_CONNECTION_ERROR = "api_connection_error"


def result_for_error(key: str, exc: Exception) -> Result:
    """Classify one failed call on the item ``key``: Stripe's errors by what Stripe says,
    anything else as any sink's (:meth:`BaseBackend.result_for_error`)."""
    if isinstance(exc, stripe.StripeError):
        return _stripe_error(key, exc)
    return BaseBackend.result_for_error(key, exc)


def already_cancelled(result: Result) -> Result:
    """A cancellation refused because the event is cancelled already counts as done (an
    earlier try took effect, though its answer was lost or a 500)."""
    if result.outcome == Outcome.FAILED and ALREADY_CANCELLED.search(result.message):
        return Result(result.key, Outcome.DELIVERED, "already_cancelled", result.message)
    return result


def is_outage(result: Result) -> bool:
    """Stripe unreachable or failing as a whole (no connection, a 5xx) or refusing our
    credentials, not this item."""
    return result.outcome == Outcome.RETRY and (
        result.code == API_CONNECTION_ERROR
        or result.code.startswith("http_5")
        or result.rejects_credentials
    )


@contextmanager
def credentials_named() -> Iterator[None]:
    """Raise :class:`CredentialsRejected` (saying what to fix) for a read Stripe refused for
    our credentials; every other error passes unchanged."""
    try:
        yield
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        result = _stripe_error("", exc)
        raise CredentialsRejected(result.code, result.message) from exc


def _stripe_error(key: str, exc: stripe.StripeError) -> Result:
    message = _message(exc)
    code = _code(exc)
    status = exc.http_status
    retry_after = _retry_after(exc.headers)
    if DUPLICATE_IDENTIFIER in message:
        return Result(key, Outcome.DELIVERED, code, message)
    if isinstance(exc, stripe.AuthenticationError):
        return Result(key, Outcome.RETRY, CREDENTIALS_REJECTED, _rejected_key(message))
    if isinstance(exc, stripe.PermissionError):
        return Result(key, Outcome.RETRY, PERMISSION_DENIED, _missing_permission(message))
    if isinstance(exc, stripe.TemporarySessionExpiredError):
        return Result(key, Outcome.RETRY, code or "session_expired", message, retry_after)
    if isinstance(exc, stripe.APIConnectionError) or status is None:
        return Result(key, Outcome.RETRY, code or API_CONNECTION_ERROR, message, retry_after)
    if status == 429 or status == 409 or status >= 500:
        # Rate limits, lock timeouts, conflicts and outages pass. Stripe-Should-Retry: false
        # on these only means "the same idempotency key would replay this answer"; meter
        # events are deduplicated by identifier and seat quantities are absolute, so the
        # engine backs off and tries again regardless.
        return Result(key, Outcome.RETRY, code or f"http_{status}", message, retry_after)
    if _header(exc.headers, "stripe-should-retry") == "true":
        return Result(key, Outcome.RETRY, code or f"http_{status}", message, retry_after)
    return Result(key, Outcome.FAILED, code or f"http_{status}", message)


def _rejected_key(stripe_message: str) -> str:
    return (
        f"Stripe rejected the API key ({stripe_message}). Nothing reaches Stripe until it "
        "works: set BILLFLOW_USAGE['STRIPE_API_KEY'] (or dj-stripe's secret key) to a valid "
        "key and restart the processes using it. Waiting usage is then sent, once; it uses "
        "up no attempts meanwhile."
    )


def _missing_permission(stripe_message: str) -> str:
    return (
        f"Stripe refused this restricted key the permission the call needs ({stripe_message}). "
        "Grant the key that permission in Stripe's Dashboard (Developers > API keys) or "
        "configure a key that has it. Waiting usage is then sent, once; it uses up no "
        "attempts meanwhile."
    )


def _code(exc: stripe.StripeError) -> str:
    """Stripe's error code: ``e.error.code`` carries it where ``e.code`` is None (429s)."""
    error = exc.error
    nested = getattr(error, "code", None) if error is not None else None
    return str(exc.code or nested or "")


def _message(exc: stripe.StripeError) -> str:
    text = exc.user_message or type(exc).__name__
    if exc.request_id:
        text = f"{text} (Stripe request {exc.request_id})"
    return redact(str(text))


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value).strip().lower()
    return None


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = _header(headers, "retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
