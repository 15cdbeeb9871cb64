"""``FakeStripe``: the server plus a thread-safe Python API to steer and inspect it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from . import catalog, meter_events, meters, subscriptions, usage_records
from .clock import Clock
from .control import Control, forget_sessions, summary
from .dispatch import Dispatcher, encode
from .events import EventDelivery, deliver_errors
from .faults import Faults
from .idempotency import IdempotencyStore
from .keys import Keys
from .server import HttpServer
from .state import Key, RequestRecord, State
from .summaries import aggregate, formula_of

JSON = dict[str, Any]


class FakeStripe:
    """An in-memory Stripe speaking real HTTP; see the package docstring for usage."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int = 0) -> None:
        self.host = host
        self.port = port
        self.clock = Clock()
        self.faults = Faults(seed)
        #: API keys revoked or restricted by the test (``keys.revoke(key)``, ``keys.deny(...)``).
        self.keys = Keys()
        self._state = State(self.clock)
        self._idempotency = IdempotencyStore(self.clock)
        control = Control(self._state, self.faults, self.clock, self.keys, self.reset)
        self._dispatcher = Dispatcher(
            self._state, self.faults, self._idempotency, control.handle, self.keys
        )
        self._server: HttpServer | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeStripe:
        """Bind and serve on a daemon thread; returns self."""
        if self._server is None:
            self._server = HttpServer(self.host, self.port, self._dispatcher)
            self.host, self.port = self._server.address
            self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and hang up on open connections."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def url(self) -> str:
        """Base URL for ``StripeClient(base_addresses={"api": url, "meter_events": url})``."""
        if self._server is None:
            raise RuntimeError("FakeStripe is not running: call start() first")
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget all objects, events, logs, idempotency keys, faults and key restrictions;
        real time again."""
        self._state.reset()
        self.faults.reset()
        self.keys.reset()
        self._idempotency.reset()
        self.clock.reset()

    def forget_sessions(self) -> int:
        """Forget every v2 meter event session, as a restarted Stripe would: stream requests
        with an old token then get a 401. Returns how many were forgotten."""
        return forget_sessions(self._state)

    def save_state(self, path: str | os.PathLike[str]) -> None:
        """Write Stripe's objects, meter events and quantity changes to ``path`` as JSON, so a
        later fake can ``load_state`` them (request logs, faults and idempotency keys are not
        kept)."""
        target = Path(path)
        partial = target.with_name(f"{target.name}.partial")
        partial.write_text(self._state.dump(), encoding="utf-8")
        partial.replace(target)  # never leaves a half-written file behind

    def load_state(self, path: str | os.PathLike[str]) -> None:
        """Replace everything with what ``save_state`` wrote to ``path``.

        Raises ValueError naming the file when it is not such a state file.
        """
        try:
            self._state.load(Path(path).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    # -- setup without HTTP ----------------------------------------------------------------

    def create_customer(
        self, email: str | None = None, name: str | None = None, *, id: str | None = None
    ) -> JSON:
        """A customer, optionally with a chosen id."""
        return self._call(catalog.create_customer, {"email": email, "name": name, "id": id})

    def create_product(self, name: str = "Fake product") -> JSON:
        """A product."""
        return self._call(catalog.create_product, {"name": name})

    def create_meter(
        self,
        event_name: str,
        formula: str = "sum",
        *,
        customer_key: str = "stripe_customer_id",
        value_key: str = "value",
        display_name: str | None = None,
    ) -> JSON:
        """An active meter for ``event_name`` aggregating with ``formula`` (sum|count|last)."""
        return self._call(
            meters.create_meter,
            {
                "display_name": display_name or event_name,
                "event_name": event_name,
                "default_aggregation": {"formula": formula},
                "customer_mapping": {"event_payload_key": customer_key},
                "value_settings": {"event_payload_key": value_key},
            },
        )

    def create_price(
        self,
        *,
        unit_amount: int = 100,
        currency: str = "usd",
        interval: str | None = "month",
        usage_type: str | None = None,
        meter: str | None = None,
        product: str | None = None,
    ) -> JSON:
        """A price: metered when ``meter`` is given (or ``usage_type="metered"``, which
        without a meter makes a legacy meterless price), licensed otherwise; one-time when
        ``interval`` is None."""
        recurring = (
            {
                "interval": interval,
                "usage_type": usage_type or ("metered" if meter else "licensed"),
                "meter": meter,
            }
            if interval
            else None
        )
        p: JSON = {"unit_amount": unit_amount, "currency": currency, "recurring": recurring}
        if product:
            p["product"] = product
        else:
            p["product_data"] = {"name": "Fake product"}
        return self._call(lambda s, q: catalog.create_price(s, q, allow_meterless=True), p)

    def create_subscription(self, customer: str, price: str, quantity: int | None = None) -> JSON:
        """An active subscription with one item."""
        item: JSON = {"price": price, "quantity": quantity}
        return self._call(
            subscriptions.create_subscription, {"customer": customer, "items": [item]}
        )

    def record_meter_event(
        self,
        event_name: str,
        customer: str,
        value: int = 1,
        *,
        identifier: str | None = None,
        timestamp: int | None = None,
    ) -> JSON:
        """A meter event as if some other client had sent it (Stripe's rules apply; faults
        don't): usage the ledger never recorded, to test reconciliation."""
        return self._call(
            meter_events.create_v1,
            {
                "event_name": event_name,
                "payload": {"stripe_customer_id": customer, "value": str(value)},
                "identifier": identifier,
                "timestamp": timestamp,
            },
        )

    def deactivate_meter(self, meter_id: str) -> JSON:
        """Deactivate a meter, as the Dashboard would: events for its name are refused."""
        return self._call(lambda s, _: meters.deactivate_meter(s, meter_id), {})

    def reactivate_meter(self, meter_id: str) -> JSON:
        """Reactivate a deactivated meter."""
        return self._call(lambda s, _: meters.reactivate_meter(s, meter_id), {})

    def cancel_subscription(self, subscription_id: str) -> JSON:
        """Cancel a subscription at once, as the Dashboard or another client would."""
        return self._call(lambda s, _: subscriptions.cancel_subscription(s, subscription_id), {})

    def cancel_meter_event(self, event_name: str, identifier: str) -> JSON:
        """Cancel an accepted event as if some other client had (within Stripe's 24 hours)."""
        return self._call(
            meter_events.cancel_v1,
            {"event_name": event_name, "type": "cancel", "cancel": {"identifier": identifier}},
        )

    # -- events, as an Event Destination receives them -------------------------------------

    def emit_meter_error_events(
        self, signing_secret: str | Sequence[str], *, max_samples: int | None = None
    ) -> list[EventDelivery]:
        """Stripe's asynchronous reports of the stream events refused since the last call:
        one ``v1.billing.meter.error_report_triggered`` event per meter (and one
        ``v1.billing.meter.no_meter_found`` for names no meter counts), retrievable at
        ``GET /v2/core/events/{id}`` for 30 days, each returned as the signed thin event its
        Event Destination receives.

        Post ``delivery.body`` with ``delivery.headers`` to the endpoint under test;
        ``delivery.signed(timestamp)`` signs it at another time (a replay). Several secrets
        sign it once each, as Stripe does while a secret is rotated. ``max_samples`` caps the
        sample errors per error code, as Stripe's reports name samples (None: all).
        """
        return deliver_errors(self._state, signing_secret, max_samples=max_samples)

    # -- inspection --------------------------------------------------------------------------

    def meter_event_total(self, event_name: str, customer: str) -> int:
        """All-time aggregate of live events for (event_name, customer), by the meter's formula."""
        with self._state.lock:
            events = self._state.events_by_key.get((event_name, customer), [])
            return aggregate(events, formula_of(self._state, events))

    def meter_events(
        self, event_name: str | None = None, customer: str | None = None
    ) -> list[JSON]:
        """Accepted, not cancelled events, grouped by (event_name, customer), each group in
        arrival order."""
        with self._state.lock:
            return [
                ev.as_dict()
                for (name, cust), events in self._state.events_by_key.items()
                if event_name in (None, name) and customer in (None, cust)
                for ev in events
                if not ev.cancelled
            ]

    @property
    def duplicate_identifier_rejections(self) -> int:
        """Synchronous events refused because their identifier was already used."""
        return self._state.duplicate_identifier_rejections

    @property
    def duplicate_identifiers_ignored(self) -> int:
        """Stream events dropped silently because their identifier was already used."""
        return self._state.duplicate_identifiers_ignored

    @property
    def error_reports(self) -> list[JSON]:
        """Stream events that broke a rule: identifier, event_name, code, message, time."""
        with self._state.lock:
            return [dict(r) for r in self._state.error_reports]

    def subscription_item(self, si_id: str) -> JSON:
        """A copy of a subscription item (``quantity`` absent on metered items)."""
        return self._call(lambda s, _: subscriptions.get_item(s, si_id), {})

    @property
    def quantity_updates(self) -> list[JSON]:
        """Every accepted quantity change: item, subscription, quantity, proration, time."""
        with self._state.lock:
            return [dict(u) for u in self._state.quantity_updates]

    @property
    def seat_rate_limit_hits(self) -> list[JSON]:
        """Quantity updates refused by the 200-per-hour-per-subscription limit."""
        with self._state.lock:
            return [dict(h) for h in self._state.seat_rate_limit_hits]

    @property
    def usage_record_totals(self) -> dict[str, int]:
        """Legacy usage record totals per subscription item."""
        with self._state.lock:
            return usage_records.totals(self._state)

    @property
    def request_log(self) -> list[RequestRecord]:
        """Every API request (control requests excluded) in arrival order."""
        return list(self._state.request_log)

    def request_count(self, path_prefix: str | None = None, method: str | None = None) -> int:
        """How many API requests matched ``path_prefix`` and ``method``."""
        return sum(
            1
            for r in self.request_log
            if (path_prefix is None or r.path.startswith(path_prefix))
            and method in (None, r.method)
        )

    @property
    def max_concurrency_per_customer_meter(self) -> dict[Key, int]:
        """Peak concurrent single meter-event requests per (event_name, customer)."""
        with self._state.lock:
            return dict(self._state.max_concurrency)

    def summary(self) -> JSON:
        """What ``GET /_fake/state`` answers."""
        return summary(self._state, self.faults, self.clock, self.keys)

    def _call(self, fn: Callable[[State, JSON], JSON], params: JSON) -> JSON:
        """Run a handler under the lock, dropping None params; return a private copy."""
        clean = {k: v for k, v in params.items() if v is not None}
        with self._state.lock:
            body = encode(fn(self._state, clean))
        copy: JSON = json.loads(body)
        return copy
