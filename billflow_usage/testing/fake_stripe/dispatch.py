"""The request pipeline, independent of the socket layer: faults, authentication,
idempotency, routing, the handler under the state lock (or a stored fault in its place), and
the request log."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import errors, meter_events, routes
from .faults import STORED_ERROR_AFTER_EFFECT, Decision, FaultRule, Faults
from .forms import parse_form, parse_json
from .idempotency import IdempotencyStore, Reply
from .keys import Keys
from .state import Key, RequestRecord, State

Control = Callable[[str, str, bytes], Reply]


class Headers(Protocol):
    """Case-insensitive header lookup (``http.client.HTTPMessage`` fits)."""

    def get(self, name: str, /) -> str | None: ...


@dataclass(frozen=True)
class Request:
    """An HTTP request as read off the socket."""

    method: str
    target: str
    headers: Headers
    body: bytes


def encode(obj: Any) -> bytes:
    """Compact JSON, as every answer is."""
    return json.dumps(obj, separators=(",", ":")).encode()


def error_reply(exc: errors.StripeError) -> Reply:
    """Render a Stripe error."""
    return Reply(exc.status, encode(exc.body()), dict(exc.headers))


class Dispatcher:
    """Turns a :class:`Request` into a :class:`Reply`, or None to close the connection
    without answering (outages and dropped answers)."""

    def __init__(
        self,
        state: State,
        faults: Faults,
        idempotency: IdempotencyStore,
        control: Control,
        keys: Keys | None = None,
    ) -> None:
        self.state = state
        self.faults = faults
        self.idempotency = idempotency
        self.control = control
        self.keys = keys or Keys()

    def dispatch(self, req: Request) -> Reply | None:
        """Serve one request."""
        path, _, query = req.target.partition("?")
        if path.startswith("/_fake/"):
            reply = self.control(req.method, path, req.body)
            reply.headers["Request-Id"] = _request_id()
            return reply
        decision = self.faults.decide(req.method, path)
        found = routes.match(req.method, path)
        route, args = found if found else (None, {})
        template = route.template if route else None
        if decision.outage:
            self.state.log_request(RequestRecord(req.method, path, template, 0, "outage"))
            return None
        params = _parse(req, query, path.startswith("/v2/"))
        flight = self._flight_key(route, params)
        stored: FaultRule | None = None
        try:
            if decision.delay:
                self.faults.sleep(decision.delay)
            if decision.status is not None:
                reply = error_reply(_fault_error(decision.status, path.startswith("/v2/")))
            else:
                reply, stored = self._execute(req, path, route, args, params)
        finally:
            if flight is not None:
                self.state.exit_flight(flight)
        reply.headers.setdefault("Request-Id", _request_id())
        fault = stored.name if stored is not None else _fault_name(decision)
        record = RequestRecord(req.method, path, template, reply.status, fault)
        self.state.log_request(record)
        return None if decision.drop else reply

    def _flight_key(
        self, route: routes.Route | None, params: dict[str, Any] | errors.StripeError
    ) -> Key | None:
        """Enter the in-flight counter for single meter-event requests."""
        if route is None or route.concurrency is None or isinstance(params, errors.StripeError):
            return None
        with self.state.lock:
            key = route.concurrency(self.state, params)
        if key is not None:
            self.state.enter_flight(key)
        return key

    def _execute(
        self,
        req: Request,
        path: str,
        route: routes.Route | None,
        args: dict[str, str],
        params: dict[str, Any] | errors.StripeError,
    ) -> tuple[Reply, FaultRule | None]:
        """Authenticate, honour the idempotency key, then run the handler (or the stored
        fault striking it); the reply and that fault."""
        key = req.headers.get("Idempotency-Key") if req.method == "POST" else None
        try:
            self._authenticate(req, path, route)
            if route is None:
                raise errors.unrecognized_url(req.method, path)
            if isinstance(params, errors.StripeError):
                raise params
            if key:
                fingerprint = IdempotencyStore.fingerprint(req.method, path, req.body)
                replay = self.idempotency.begin(key, fingerprint)
                if replay is not None:
                    return _replayed(replay), None
        except errors.StripeError as exc:
            return error_reply(exc), None
        # The endpoint runs from here on: whatever it answers is stored under the key.
        call = routes.Call(params, args, req.headers.get("Stripe-Version"))
        stored = self.faults.decide_stored(req.method, path)
        if stored is None:
            reply = self._handle(route, call)
        else:
            if stored.kind == STORED_ERROR_AFTER_EFFECT:
                self._handle(route, call)  # the change is made; its answer is lost
            retry = stored.should_retry is not False
            reply = error_reply(errors.server_error(stored.status, should_retry=retry))
        reply.headers["Request-Id"] = _request_id()
        if key:
            self.idempotency.finish(key, reply)
        return reply, stored

    def _handle(self, route: routes.Route, call: routes.Call) -> Reply:
        """Run the handler under the state lock."""
        try:
            with self.state.lock:
                return Reply(200, encode(route.handler(self.state, call)))
        except errors.StripeError as exc:
            return error_reply(exc)
        except Exception:  # a bug in the fake: say so, answer 500, keep serving
            traceback.print_exc(file=sys.stderr)
            return error_reply(errors.server_error(500, should_retry=False))

    def _authenticate(self, req: Request, path: str, route: routes.Route | None) -> None:
        """API keys must be test-mode secret or restricted keys that were not revoked and
        hold the permission (:class:`~.keys.Keys`); the stream takes a session token
        instead."""
        scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
        if scheme != "Bearer" or not token.strip():
            raise errors.authentication("You did not provide an API key.")
        if route is not None and route.auth == "session":
            with self.state.lock:
                meter_events.check_session(self.state, token)
            return
        self.keys.check(token, req.method, path, route.template if route else None)


def _parse(req: Request, query: str, v2: bool) -> dict[str, Any] | errors.StripeError:
    """Parameters from the query string and the body (form for v1, JSON for v2)."""
    try:
        if v2 and req.body:
            return parse_json(req.body)
        params = parse_form(query) if query else {}
        if req.body:
            params.update(parse_form(req.body.decode("utf-8", "replace")))
        return params
    except errors.StripeError as exc:
        return exc


def _fault_error(rule: FaultRule, v2: bool) -> errors.StripeError:
    """The error an injected ``status`` fault answers with."""
    if rule.status == 429:
        return errors.rate_limited(
            "Too many requests hit the API too quickly.",
            v2=v2,
            code=rule.code or "rate_limit",
            should_retry=rule.should_retry,
        )
    return errors.server_error(rule.status, should_retry=rule.should_retry is not False)


def _fault_name(decision: Decision) -> str | None:
    """How the request log names the fault applied to a request before handling."""
    if decision.drop:
        return "drop_after_processing"
    if decision.status is not None:
        return decision.status.name
    return "latency" if decision.delay else None


def _replayed(stored: Reply) -> Reply:
    """A replay of a stored answer, flagged like Stripe does."""
    headers = {**stored.headers, "Idempotent-Replayed": "true"}
    headers["Original-Request"] = stored.headers.get("Request-Id", "")
    headers["Request-Id"] = _request_id()
    return Reply(stored.status, stored.body, headers)


def _request_id() -> str:
    return f"req_{os.urandom(8).hex()}"
