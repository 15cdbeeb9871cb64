"""How Stripe's answers map to Outcomes (exceptions built as stripe-python builds them)."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from billflow_usage.backends.base import Outcome
from billflow_usage.backends.stripe.errors import is_outage, redact, result_for_error


def error(cls: type[stripe.StripeError], status: int | None, **kwargs: Any) -> stripe.StripeError:
    body = {"error": {"message": kwargs.pop("message", "boom"), **kwargs.pop("body", {})}}
    return cls(
        body["error"]["message"],
        http_status=status,
        json_body=body,
        headers=kwargs.pop("headers", {}),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("exc", "outcome", "code"),
    [
        (stripe.APIConnectionError("reset by peer"), Outcome.RETRY, "api_connection_error"),
        (error(stripe.APIError, 500), Outcome.RETRY, "http_500"),
        (
            error(stripe.APIError, 503, headers={"Stripe-Should-Retry": "false"}),
            Outcome.RETRY,
            "http_503",
        ),
        (error(stripe.APIError, 409), Outcome.RETRY, "http_409"),
        (
            error(stripe.RateLimitError, 429, body={"code": "lock_timeout"}),
            Outcome.RETRY,
            "lock_timeout",
        ),
        (
            error(
                stripe.TemporarySessionExpiredError, 401, code="billing_meter_event_session_expired"
            ),
            Outcome.RETRY,
            "billing_meter_event_session_expired",
        ),
        (
            error(stripe.InvalidRequestError, 400, param=None, code="no_meter"),
            Outcome.FAILED,
            "no_meter",
        ),
        (
            error(
                stripe.InvalidRequestError,
                400,
                param=None,
                code="lock",
                headers={"stripe-should-retry": "true"},
            ),
            Outcome.RETRY,
            "lock",
        ),
        (error(stripe.AuthenticationError, 401), Outcome.RETRY, "credentials_rejected"),
        (error(stripe.PermissionError, 403), Outcome.RETRY, "permission_denied"),
        (
            error(
                stripe.InvalidRequestError,
                400,
                param="identifier",
                code=None,
                message="An event already exists with identifier x.",
                headers={"Stripe-Should-Retry": "false"},
            ),
            Outcome.DELIVERED,
            "",
        ),
        (ValueError("unexpected"), Outcome.RETRY, "ValueError"),
    ],
)
def test_outcomes(exc: Exception, outcome: Outcome, code: str) -> None:
    result = result_for_error("key", exc)

    assert (result.key, result.outcome, result.code) == ("key", outcome, code)


def test_retry_after_is_read_when_stripe_sends_it() -> None:
    exc = error(stripe.RateLimitError, 429, headers={"Retry-After": "7"})

    assert result_for_error("k", exc).retry_after == 7.0


def test_request_ids_are_kept_and_secrets_masked() -> None:
    exc = error(
        stripe.AuthenticationError,
        401,
        message="Bad key sk_test_abc123XYZ and token mes_test_61Qzz",
        headers={"request-id": "req_42"},
    )

    message = result_for_error("k", exc).message

    assert "(Bad key sk_test_*** and token mes_test_*** (Stripe request req_42))" in message
    assert "abc123XYZ" not in message
    assert redact("x" * 2000).endswith("…")


@pytest.mark.parametrize(
    ("cls", "status", "says"),
    [
        (stripe.AuthenticationError, 401, "set BILLFLOW_USAGE['STRIPE_API_KEY']"),
        (stripe.PermissionError, 403, "Grant the key that permission"),
    ],
)
def test_refused_credentials_say_what_to_fix_and_are_an_outage(
    cls: type[stripe.StripeError], status: int, says: str
) -> None:
    result = result_for_error("k", error(cls, status, message="Invalid API Key provided"))

    assert result.rejects_credentials
    assert says in result.message
    assert "Invalid API Key provided" in result.message
    assert is_outage(result)
