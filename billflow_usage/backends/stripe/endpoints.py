"""Stripe request URLs as metric labels: the path from the API version on, with every ID
replaced by ``{id}`` (``/v1/subscription_items/{id}``), so the label's values are the few
endpoints the backend calls, never a customer or an item."""

from __future__ import annotations

from urllib.parse import urlsplit

#: Path segments that name a resource or an action; any other segment is an ID.
RESOURCE_WORDS = frozenset(
    {
        "billing",
        "core",
        "customers",
        "deactivate",
        "event_summaries",
        "events",
        "meter_event_adjustments",
        "meter_event_session",
        "meter_event_stream",
        "meter_events",
        "meters",
        "prices",
        "products",
        "reactivate",
        "subscription_items",
        "subscriptions",
        "usage_records",
    }
)
VERSIONS = ("v1", "v2")
#: Segments kept after the version; a longer path is cut (and says so with "...").
MAX_SEGMENTS = 5
OTHER = "other"


def endpoint_of(url: str) -> str:
    """``https://api.stripe.com/v1/subscription_items/si_1?x=1`` ->
    ``/v1/subscription_items/{id}``; a path without an API version is ``other``."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    start = next((i for i, s in enumerate(segments) if s in VERSIONS), None)
    if start is None:
        return OTHER
    rest = segments[start + 1 :]
    named = [s if s in RESOURCE_WORDS else "{id}" for s in rest[:MAX_SEGMENTS]]
    if len(rest) > MAX_SEGMENTS:
        named.append("...")
    return "/".join(["", segments[start], *named])
