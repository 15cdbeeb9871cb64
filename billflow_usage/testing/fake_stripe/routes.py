"""The route table: which handler serves each method and path, and how it authenticates."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import catalog, events, meter_events, meters, subscriptions, summaries, usage_records
from .state import Key, State

JSON = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """What a handler needs from the request."""

    params: dict[str, Any]
    args: dict[str, str]
    stripe_version: str | None


Handler = Callable[[State, Call], JSON]


@dataclass(frozen=True)
class Route:
    """One endpoint. ``auth`` is ``secret`` (an API key) or ``session`` (a v2 stream token);
    ``concurrency`` names how to find the (event_name, customer) whose in-flight requests
    are counted."""

    method: str
    template: str
    handler: Handler
    auth: str = "secret"
    concurrency: Callable[[State, dict[str, Any]], Key | None] | None = None
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


ROUTES = [
    Route("POST", "/v1/customers", lambda s, c: catalog.create_customer(s, c.params)),
    Route("GET", "/v1/customers", lambda s, c: catalog.list_customers(s, c.params)),
    Route("GET", "/v1/customers/{id}", lambda s, c: catalog.get_customer(s, c.args["id"])),
    Route("POST", "/v1/products", lambda s, c: catalog.create_product(s, c.params)),
    Route(
        "POST",
        "/v1/prices",
        lambda s, c: catalog.create_price(
            s, c.params, allow_meterless=catalog.before_basil(c.stripe_version)
        ),
    ),
    Route("GET", "/v1/prices", lambda s, c: catalog.list_prices(s, c.params)),
    Route("GET", "/v1/prices/{id}", lambda s, c: catalog.get_price(s, c.args["id"])),
    Route("POST", "/v1/billing/meters", lambda s, c: meters.create_meter(s, c.params)),
    Route("GET", "/v1/billing/meters", lambda s, c: meters.list_meters(s, c.params)),
    Route("GET", "/v1/billing/meters/{id}", lambda s, c: meters.get_meter(s, c.args["id"])),
    Route(
        "POST",
        "/v1/billing/meters/{id}",
        lambda s, c: meters.update_meter(s, c.args["id"], c.params),
    ),
    Route(
        "POST",
        "/v1/billing/meters/{id}/deactivate",
        lambda s, c: meters.deactivate_meter(s, c.args["id"]),
    ),
    Route(
        "POST",
        "/v1/billing/meters/{id}/reactivate",
        lambda s, c: meters.reactivate_meter(s, c.args["id"]),
    ),
    Route(
        "GET",
        "/v1/billing/meters/{id}/event_summaries",
        lambda s, c: summaries.event_summaries(s, c.args["id"], c.params),
    ),
    Route(
        "POST",
        "/v1/billing/meter_events",
        lambda s, c: meter_events.create_v1(s, c.params),
        concurrency=meter_events.concurrency_key,
    ),
    Route(
        "POST",
        "/v1/billing/meter_event_adjustments",
        lambda s, c: meter_events.cancel_v1(s, c.params),
    ),
    Route(
        "POST",
        "/v2/billing/meter_event_session",
        lambda s, c: meter_events.create_session(s),
    ),
    Route(
        "POST",
        "/v2/billing/meter_event_stream",
        lambda s, c: meter_events.stream(s, c.params),
        auth="session",
    ),
    Route(
        "POST",
        "/v2/billing/meter_events",
        lambda s, c: meter_events.create_v2(s, c.params),
        concurrency=meter_events.concurrency_key,
    ),
    Route(
        "POST",
        "/v2/billing/meter_event_adjustments",
        lambda s, c: meter_events.cancel_v2(s, c.params),
    ),
    Route("GET", "/v2/core/events/{id}", lambda s, c: events.retrieve(s, c.args["id"])),
    Route("POST", "/v1/subscriptions", lambda s, c: subscriptions.create_subscription(s, c.params)),
    Route("GET", "/v1/subscriptions", lambda s, c: subscriptions.list_subscriptions(s, c.params)),
    Route(
        "GET",
        "/v1/subscriptions/{id}",
        lambda s, c: subscriptions.get_subscription(s, c.args["id"]),
    ),
    Route(
        "DELETE",
        "/v1/subscriptions/{id}",
        lambda s, c: subscriptions.cancel_subscription(s, c.args["id"]),
    ),
    Route("GET", "/v1/subscription_items", lambda s, c: subscriptions.list_items(s, c.params)),
    Route(
        "GET",
        "/v1/subscription_items/{id}",
        lambda s, c: subscriptions.get_item(s, c.args["id"]),
    ),
    Route(
        "POST",
        "/v1/subscription_items/{id}",
        lambda s, c: subscriptions.update_item(s, c.args["id"], c.params),
    ),
    Route(
        "POST",
        "/v1/subscription_items/{id}/usage_records",
        lambda s, c: usage_records.create_usage_record(s, c.args["id"], c.params, c.stripe_version),
    ),
]

_STATIC = {(r.method, r.template): r for r in ROUTES if "{" not in r.template}
_DYNAMIC = [r for r in ROUTES if "{" in r.template]


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route serving ``method path`` and its path arguments."""
    route = _STATIC.get((method, path))
    if route is not None:
        return route, {}
    for route in _DYNAMIC:
        if route.method == method and (found := route.pattern.match(path)):
            return route, found.groupdict()
    return None
