"""Stripe request URLs become endpoint labels with every ID replaced."""

from __future__ import annotations

import pytest

from billflow_usage.backends.stripe.endpoints import endpoint_of


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://api.stripe.com/v1/billing/meter_events", "/v1/billing/meter_events"),
        (
            "https://api.stripe.com/v1/subscription_items/si_NcLYdDxLHxlTUT?expand[]=price",
            "/v1/subscription_items/{id}",
        ),
        (
            "https://api.stripe.com/v1/billing/meters/mtr_123/event_summaries",
            "/v1/billing/meters/{id}/event_summaries",
        ),
        (
            "https://meter-events.stripe.com/v2/billing/meter_event_stream",
            "/v2/billing/meter_event_stream",
        ),
        ("http://127.0.0.1:12111/proxy/stripe/v2/core/events/evt_1", "/v2/core/events/{id}"),
        (
            "https://api.stripe.com/v1/customers/cus_A/x/y/z/w/q",
            "/v1/customers/{id}/{id}/{id}/{id}/...",
        ),
        ("https://api.stripe.com/healthcheck", "other"),
    ],
)
def test_endpoint_of(url: str, endpoint: str) -> None:
    assert endpoint_of(url) == endpoint
    assert "cus_" not in endpoint_of(url)
