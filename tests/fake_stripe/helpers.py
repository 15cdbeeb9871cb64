"""Shared helpers for the fake Stripe tests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import stripe

from billflow_usage.testing.fake_stripe import FakeStripe

API_KEY = "sk_test_fake_stripe_tests"


def make_client(fake: FakeStripe, **kwargs: Any) -> stripe.StripeClient:
    """A real StripeClient talking to the fake over HTTP."""
    kwargs.setdefault("max_network_retries", 0)
    return stripe.StripeClient(
        kwargs.pop("api_key", API_KEY),
        base_addresses={"api": fake.url, "meter_events": fake.url},
        **kwargs,
    )


def http(
    base_url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A plain HTTP call (for the control surface and raw checks): status, JSON, headers."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll for a state change made by another thread (never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)
