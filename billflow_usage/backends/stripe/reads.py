"""Reads for ``billflow_sync``: subscriptions, meters, meter event summaries and events, turned
into the plain dataclasses of :mod:`billflow_usage.backends.base`.

The parsers take Stripe's JSON shapes (``dict``-like ``StripeObject``s or webhook payloads),
so the dj-stripe webhook receivers and dj-stripe's stored ``stripe_data`` use them too.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

import stripe

from billflow_usage.backends.base import (
    RemoteItem,
    RemoteMeter,
    RemotePrice,
    RemoteSubscription,
    UsageQuery,
    UsageTotal,
)
from billflow_usage.backends.stripe.endpoints import endpoint_of
from billflow_usage.observability import recorder

PAGE = 100
#: The shortest timeout a request gets, however close its deadline (seconds).
MIN_TIMEOUT = 0.001


class RateLimiter:
    """At most ``per_second`` calls per second across threads (0 or None: no limit).

    Spaces calls evenly rather than in bursts, which is what Stripe's per-second limits and
    its one-call-per-customer-per-meter rule reward.
    """

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._lock = threading.Lock()
        self._next = 0.0
        #: Calls made so far (requests sent through the client).
        self.calls = 0

    def wait(self) -> None:
        with self._lock:
            self.calls += 1
            if not self.interval:
                return
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class ThrottledRequestsClient(stripe.RequestsClient):
    """stripe-python's requests transport, with every request passing a :class:`RateLimiter`,
    counted in the metrics (:mod:`billflow_usage.observability.recorder`) and, inside
    :meth:`until`, a timeout capped by the time left before a deadline."""

    def __init__(self, limiter: RateLimiter, **kwargs: Any) -> None:
        self._deadlines = threading.local()
        super().__init__(**kwargs)
        self.limiter = limiter

    # stripe-python reads ``_timeout`` as each request is made: capped here by the deadline
    # of the calling thread, if any.
    @property
    def _timeout(self) -> float:
        deadline: float | None = getattr(self._deadlines, "at", None)
        if deadline is None:
            return self._base_timeout
        return max(MIN_TIMEOUT, min(self._base_timeout, deadline - time.monotonic()))

    @_timeout.setter
    def _timeout(self, value: float) -> None:
        self._base_timeout = value

    @contextmanager
    def until(self, deadline: float | None) -> Iterator[None]:
        """Cap the timeout of this thread's requests by the time left before ``deadline``."""
        previous = getattr(self._deadlines, "at", None)
        self._deadlines.at = deadline
        try:
            yield
        finally:
            self._deadlines.at = previous

    def request_with_retries(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return self._counted(super().request_with_retries, method, url, *args, **kwargs)

    def request_stream_with_retries(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return self._counted(super().request_stream_with_retries, method, url, *args, **kwargs)

    def _counted(
        self, send: Callable[..., Any], method: str, url: str, *args: Any, **kwargs: Any
    ) -> Any:
        """Send through the rate limiter, counting the request in the metrics by endpoint
        and HTTP status (``error``: no answer came)."""
        self.limiter.wait()
        status = "error"
        try:
            answer = send(method, url, *args, **kwargs)
            status = str(answer[1])
            return answer
        finally:
            if recorder.enabled():
                recorder.stripe_request(endpoint_of(url), method.upper(), status)


def list_subscriptions(
    client: stripe.StripeClient, customer_id: str | None
) -> Iterator[RemoteSubscription]:
    params: dict[str, Any] = {"limit": PAGE}
    if customer_id:
        params["customer"] = customer_id
    page = client.v1.subscriptions.list(cast(Any, params))
    for subscription in page.auto_paging_iter():
        yield parse_subscription(subscription.to_dict())


def list_meters(client: stripe.StripeClient) -> list[RemoteMeter]:
    page = client.v1.billing.meters.list({"limit": PAGE})
    return [parse_meter(meter.to_dict()) for meter in page.auto_paging_iter()]


def create_meter(
    client: stripe.StripeClient, *, event_name: str, formula: str, display_name: str
) -> RemoteMeter:
    """Create the meter, or adopt the active one Stripe has for ``event_name``.

    Stripe allows one active meter per event name, so when creation fails in any way (it
    says the meter exists, or a 500 leaves it unknown whether it was made) the account's
    meters tell: the active one with that event name is the answer, else the error stands.
    A new idempotency key per call: a stored 500 never blocks the next try.
    """
    try:
        return _create_meter(
            client, event_name=event_name, formula=formula, display_name=display_name
        )
    except stripe.StripeError:
        for meter in list_meters(client):
            if meter.event_name == event_name and meter.status == "active":
                return meter
        raise


def _create_meter(
    client: stripe.StripeClient, *, event_name: str, formula: str, display_name: str
) -> RemoteMeter:
    meter = client.v1.billing.meters.create(
        cast(
            Any,
            {
                "display_name": display_name,
                "event_name": event_name,
                "default_aggregation": {"formula": formula},
                "customer_mapping": {"type": "by_id", "event_payload_key": "stripe_customer_id"},
                "value_settings": {"event_payload_key": "value"},
            },
        ),
        {"idempotency_key": f"bfu-meter-{event_name}-{uuid.uuid4().hex}"},
    )
    return parse_meter(meter.to_dict())


def retrieve_price(client: stripe.StripeClient, price_id: str) -> RemotePrice | None:
    """The price, or None when Stripe answers that it has none by that ID."""
    try:
        price = client.v1.prices.retrieve(price_id)
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_missing":
            return None
        raise
    return parse_price(price.to_dict())


def usage_total(client: stripe.StripeClient, query: UsageQuery) -> UsageTotal:
    """One summaries request for the whole period; more only when Stripe says ``has_more``."""
    params: dict[str, Any] = {
        "customer": query.customer_id,
        "start_time": int(query.start.timestamp()),
        "end_time": int(query.end.timestamp()),
    }
    values: list[int] = []
    requests = 0
    while True:
        page = client.v1.billing.meters.event_summaries.list(query.meter_id, cast(Any, params))
        requests += 1
        data = list(page.data)
        values.extend(int(summary.to_dict().get("aggregated_value") or 0) for summary in data)
        if not page.has_more or not data:
            break
        params["starting_after"] = data[-1]["id"]
    if query.formula == "last":
        return UsageTotal(values[-1] if values else 0, requests)
    return UsageTotal(sum(values), requests)


def fetch_event(client: stripe.StripeClient, event_id: str) -> dict[str, Any]:
    return client.v2.core.events.retrieve(event_id).to_dict()


def parse_subscription(data: Mapping[str, Any]) -> RemoteSubscription:
    """A subscription object (API response, webhook ``data.object`` or dj-stripe's
    ``stripe_data``) as plain data."""
    items = data.get("items") or {}
    raw_items = items.get("data") if isinstance(items, Mapping) else items
    customer = data.get("customer")
    if isinstance(customer, Mapping):
        customer = customer.get("id")
    return RemoteSubscription(
        id=str(data.get("id") or ""),
        customer_id=str(customer or ""),
        status=str(data.get("status") or ""),
        items=tuple(parse_item(item, data) for item in raw_items or ()),
        livemode=bool(data.get("livemode")),
    )


def parse_item(data: Mapping[str, Any], subscription: Mapping[str, Any]) -> RemoteItem:
    price = data.get("price") or data.get("plan") or {}
    if not isinstance(price, Mapping):
        price = {"id": price}
    recurring = price.get("recurring") or {}
    meter = recurring.get("meter") if isinstance(recurring, Mapping) else None
    if isinstance(meter, Mapping):
        meter = meter.get("id")
    quantity = data.get("quantity")
    # Since 2025-03-31.basil the period is on the item; older payloads have it on the
    # subscription.
    start = data.get("current_period_start") or subscription.get("current_period_start")
    end = data.get("current_period_end") or subscription.get("current_period_end")
    return RemoteItem(
        id=str(data.get("id") or ""),
        price_id=str(price.get("id") or ""),
        meter_id=str(meter or ""),
        usage_type=str(recurring.get("usage_type") or "") if isinstance(recurring, Mapping) else "",
        quantity=None if quantity is None else int(quantity),
        current_period_start=_moment(start),
        current_period_end=_moment(end),
    )


def parse_price(data: Mapping[str, Any]) -> RemotePrice:
    recurring = data.get("recurring") or {}
    meter = recurring.get("meter")
    if isinstance(meter, Mapping):
        meter = meter.get("id")
    return RemotePrice(
        id=str(data.get("id") or ""),
        usage_type=str(recurring.get("usage_type") or ""),
        meter_id=str(meter or ""),
        active=bool(data.get("active", True)),
    )


def parse_meter(data: Mapping[str, Any]) -> RemoteMeter:
    aggregation = data.get("default_aggregation") or {}
    return RemoteMeter(
        id=str(data.get("id") or ""),
        event_name=str(data.get("event_name") or ""),
        formula=str(aggregation.get("formula") or "sum"),
        status=str(data.get("status") or "active"),
        display_name=str(data.get("display_name") or ""),
    )


def _moment(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
