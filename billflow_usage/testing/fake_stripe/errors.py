"""Stripe's error shapes, raised by handlers and rendered by the dispatcher."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An API error: HTTP status plus the ``{"error": {...}}`` body Stripe would send."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body; v1 and v2 share it (v2 simply never sets ``param``)."""
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def invalid(message: str, *, code: str | None = None, param: str | None = None) -> StripeError:
    """A 400 ``invalid_request_error``."""
    return StripeError(400, message, code=code, param=param)


def missing_param(label: str) -> StripeError:
    """A 400 for a required parameter that was not sent."""
    return invalid(f"Missing required param: {label}.", code="parameter_missing", param=label)


def no_such(kind: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    """Stripe's ``resource_missing`` error for an unknown id."""
    return StripeError(
        status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    """A 404 for a route the fake does not know."""
    return StripeError(
        404, f"Unrecognized request URL ({method}: {path}).", code="resource_missing"
    )


def authentication(message: str) -> StripeError:
    """A 401 that stripe-python turns into ``stripe.AuthenticationError``."""
    return StripeError(401, message)


def session_expired() -> StripeError:
    """The v2 401 that stripe-python turns into ``stripe.TemporarySessionExpiredError``."""
    return StripeError(
        401,
        "The meter event session has expired. Create a new session and retry.",
        type="temporary_session_expired",
        code="billing_meter_event_session_expired",
    )


def rate_limited(
    message: str, *, v2: bool, code: str = "rate_limit", should_retry: bool | None = None
) -> StripeError:
    """A 429; ``Stripe-Should-Retry`` is only sent when ``should_retry`` is given."""
    headers = {
        "Stripe-Rate-Limited-Reason": "resource-specific"
        if code == "lock_timeout"
        else "global-rate"
    }
    if should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if should_retry else "false"
    return StripeError(
        429,
        message,
        type="rate_limit" if v2 else "invalid_request_error",
        code=code,
        headers=headers,
    )


def server_error(status: int, *, should_retry: bool = True) -> StripeError:
    """A 5xx ``api_error``."""
    return StripeError(
        status,
        "An unknown error occurred while processing the request.",
        type="api_error",
        headers={"Stripe-Should-Retry": "true" if should_retry else "false"},
    )


def idempotency(message: str, *, status: int = 400, code: str | None = None) -> StripeError:
    """An ``idempotency_error`` (stripe-python raises ``stripe.IdempotencyError`` on 400)."""
    return StripeError(status, message, type="idempotency_error", code=code)
