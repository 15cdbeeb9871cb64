"""``StripeBackend``: the default sink, configured from ``BILLFLOW_USAGE``."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, cast

import stripe

from billflow_usage.backends.base import (
    BaseBackend,
    Cancellation,
    MeterEvent,
    Outcome,
    QuantityPush,
    RemoteMeter,
    RemotePrice,
    RemoteSubscription,
    Result,
    UsageQuery,
    UsageTotal,
)
from billflow_usage.backends.stripe import errors, reads
from billflow_usage.backends.stripe.checks import stripe_checks
from billflow_usage.backends.stripe.errors import (
    already_cancelled,
    credentials_named,
    result_for_error,
)
from billflow_usage.backends.stripe.keys import identifier_in_key, identifier_key
from billflow_usage.backends.stripe.single import legacy_sender, send_partitioned, v1_sender
from billflow_usage.backends.stripe.stream import MeterEventStream

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

#: Seconds one HTTP request to Stripe may take (stripe-python's own default is 80).
DEFAULT_TIMEOUT = 30.0


class StripeBackend(BaseBackend):
    """Sends usage to Stripe with ``METER_API`` ``v1``, ``v2`` or ``legacy``.

    The client never retries by itself (``max_network_retries=0``): the delivery engine owns
    retries, backoff and the attempt count. Keyword options override the settings (tests;
    the admin's short ``timeout`` while a page waits). ``rate_limit`` caps this backend's
    requests per second (``billflow_sync`` passes ``SYNC_RATE_LIMIT``).

    ``max_concurrency`` (default ``DELIVERY_CONCURRENCY``) is how many requests it keeps in
    flight: v2 stream requests in parallel, or in v1 and legacy mode that many partitions
    (customer x meter), each sending one request at a time, as Stripe allows one concurrent
    call per customer per meter. The threads are shared by every caller of the instance.

    :meth:`within` gives a view bounded by a deadline, sharing the client, the v2 session
    and the threads: every mode (v1 partitions, v2 stream requests and session creation,
    legacy usage records, seat pushes) starts no request after it and caps each request's
    timeout by the time left.
    """

    #: The deadline of a view made by :meth:`within` (``time.monotonic()``), else None.
    deadline: float | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        stripe_account: str | None = None,
        meter_api: str | None = None,
        timeout: float | None = None,
        max_concurrency: int | None = None,
        rate_limit: float | None = None,
        **options: Any,
    ) -> None:
        from billflow_usage.conf import billflow_settings

        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        super().__init__(timeout=timeout, **options)
        self.meter_api = meter_api or billflow_settings.METER_API
        self.max_concurrency = max_concurrency or billflow_settings.DELIVERY_CONCURRENCY
        # The v2 stream has no per-customer rule; single events and usage records do.
        self.one_call_per_customer_meter = self.meter_api != "v2"
        self.needs_subscription_items = self.meter_api == "legacy"
        self.sets_totals_per_second = self.meter_api == "legacy"
        base = api_base or billflow_settings.STRIPE_API_BASE
        self.limiter = reads.RateLimiter(rate_limit)
        self._http = reads.ThrottledRequestsClient(self.limiter, timeout=timeout)
        self.client = stripe.StripeClient(
            api_key or billflow_settings.stripe_api_key,
            stripe_account=stripe_account or billflow_settings.STRIPE_ACCOUNT,
            base_addresses={"api": base, "meter_events": base} if base else None,
            max_network_retries=0,
            http_client=self._http,
        )
        self._stream = MeterEventStream(self.client, until=self._http.until)
        self._senders = _Senders(self.max_concurrency)
        self._owner = True

    def __repr__(self) -> str:
        return f"<StripeBackend meter_api={self.meter_api!r}>"

    @classmethod
    def check(cls, **kwargs: Any) -> list[CheckMessage]:
        return stripe_checks()

    @classmethod
    def result_for_error(cls, key: str, exc: Exception) -> Result:
        return result_for_error(key, exc)

    @classmethod
    def meter_event_identifier(cls, name: str) -> str:
        return identifier_in_key(name) or name

    @classmethod
    def parse_subscription(cls, data: Mapping[str, Any]) -> RemoteSubscription:
        return reads.parse_subscription(data)

    def within(self, deadline: float | None) -> StripeBackend:
        if deadline is None:
            return self
        view = copy.copy(self)
        view.deadline = deadline
        view._owner = False
        return view

    def send_meter_events(self, events: Sequence[MeterEvent]) -> list[Result]:
        if not events:
            return []
        pool = self._senders.pool()
        if self.meter_api == "v2":
            return self._stream.send(events, pool=pool, deadline=self.deadline)
        send = legacy_sender(self.client) if self.meter_api == "legacy" else v1_sender(self.client)
        return send_partitioned(events, self._bounded(send), pool=pool, deadline=self.deadline)

    def push_quantity(self, push: QuantityPush) -> Result:
        params = {"quantity": push.quantity, "proration_behavior": push.proration_behavior}
        try:
            with self._http.until(self.deadline):
                self.client.v1.subscription_items.update(
                    push.subscription_item_id,
                    cast(Any, params),
                    {"idempotency_key": push.idempotency_key},
                )
        except Exception as exc:
            return result_for_error(push.subscription_item_id, exc)
        return Result(push.subscription_item_id, Outcome.DELIVERED)

    def cancel_meter_event(self, cancellation: Cancellation) -> Result:
        if self.meter_api == "legacy":
            return Result(
                cancellation.identifier,
                Outcome.FAILED,
                "unsupported",
                "Legacy usage records cannot be cancelled; record a correction instead.",
            )
        try:
            self.client.v1.billing.meter_event_adjustments.create(
                {
                    "event_name": cancellation.event_name,
                    "type": "cancel",
                    "cancel": {"identifier": cancellation.identifier},
                },
                # A new key per call: cancelling twice is harmless (see
                # errors.already_cancelled), so a 500 Stripe stored under one key never
                # blocks the cancellation.
                {
                    "idempotency_key": identifier_key(
                        "bfu-cancel", cancellation.identifier, uuid.uuid4().hex
                    )
                },
            )
        except Exception as exc:
            return already_cancelled(result_for_error(cancellation.identifier, exc))
        return Result(cancellation.identifier, Outcome.DELIVERED)

    # Reads raise CredentialsRejected, saying what to fix, when Stripe refuses the key.

    def list_subscriptions(self, customer_id: str | None = None) -> Iterator[RemoteSubscription]:
        with credentials_named():
            yield from reads.list_subscriptions(self.client, customer_id)

    def list_meters(self) -> list[RemoteMeter]:
        with credentials_named():
            return reads.list_meters(self.client)

    def create_meter(self, *, event_name: str, formula: str, display_name: str) -> RemoteMeter:
        with credentials_named():
            return reads.create_meter(
                self.client, event_name=event_name, formula=formula, display_name=display_name
            )

    def retrieve_price(self, price_id: str) -> RemotePrice | None:
        with credentials_named():
            return reads.retrieve_price(self.client, price_id)

    def usage_total(self, query: UsageQuery) -> UsageTotal:
        with credentials_named():
            return reads.usage_total(self.client, query)

    def fetch_event(self, event_id: str) -> dict[str, Any]:
        with credentials_named():
            return reads.fetch_event(self.client, event_id)

    def is_outage(self, result: Result) -> bool:
        return errors.is_outage(result)

    def close(self) -> None:
        if self._owner:  # a view made by within() shares what the backend owns
            self._senders.close()
            self._http.close()

    def _bounded(self, send: Callable[[MeterEvent], None]) -> Callable[[MeterEvent], None]:
        """``send`` with its request's timeout capped by this view's deadline."""

        def bounded(event: MeterEvent) -> None:
            with self._http.until(self.deadline):
                send(event)

        return bounded


class _Senders:
    """Threads kept for the backend's life, so their HTTP connections are reused; shared with
    the views :meth:`StripeBackend.within` makes."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor | None:
        if self.size <= 1:
            return None
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.size, thread_name_prefix="billflow-send"
                )
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
