"""The v2 high-throughput stream: a meter event session and batches of up to 100 events."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime

import stripe

from billflow_usage.backends.base import MeterEvent, Outcome, Result
from billflow_usage.backends.stripe.errors import result_for_error
from billflow_usage.redaction import redact

#: Stripe accepts at most this many events per stream request.
MAX_EVENTS = 100
#: Sessions last 15 minutes; when Stripe's answer can't be read, assume that.
DEFAULT_LIFETIME = 15 * 60.0
#: Renew this long before the session runs out, so no request races its expiry.
RENEW_MARGIN = 60.0
#: A stream request's 401: the session expired, or Stripe no longer knows it.
SESSION_REFUSED = (stripe.TemporarySessionExpiredError, stripe.AuthenticationError)
NOT_SENT = Result("", Outcome.NOT_SENT)

#: Caps the timeout of the calling thread's requests by a deadline (the transport's).
Until = Callable[[float | None], AbstractContextManager[None]]


def _unbounded(deadline: float | None) -> AbstractContextManager[None]:
    return nullcontext()


class MeterEventStream:
    """Sends events through ``meter_event_stream`` with a shared, self-renewing session.

    Thread-safe: one session serves every thread; it is renewed ahead of its expiry (measured
    on the local monotonic clock, so clock skew with Stripe doesn't matter), and at once
    whenever Stripe answers a stream request 401: the session expired, or Stripe no longer
    knows it (it may forget sessions early). A 401 to creating the session is about the API
    key, and classified so.
    """

    def __init__(self, client: stripe.StripeClient, *, until: Until = _unbounded) -> None:
        self.client = client
        self._until = until
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def send(
        self,
        events: Sequence[MeterEvent],
        *,
        pool: Executor | None = None,
        deadline: float | None = None,
    ) -> list[Result]:
        """Send in requests of up to 100 events, in parallel in ``pool`` when given; each
        request's events get that request's outcome. No request (session creation included)
        starts after ``deadline``: its events answer ``NOT_SENT``."""
        chunks = [events[start : start + MAX_EVENTS] for start in range(0, len(events), MAX_EVENTS)]

        def send_chunk(chunk: Sequence[MeterEvent]) -> list[Result]:
            with self._until(deadline):
                return self._send_chunk(chunk, deadline)

        answers: Iterable[list[Result]] = (
            map(send_chunk, chunks)
            if pool is None or len(chunks) == 1
            else pool.map(send_chunk, chunks)
        )
        return [result for answer in answers for result in answer]

    def token(self, *, expired: str | None = None) -> str:
        """The current session token; a new session if it is due or ``expired`` is it."""
        with self._lock:
            if self._token is None or self._token == expired or time.monotonic() >= self._renew_at:
                started = time.monotonic()
                session = self.client.v2.billing.meter_event_session.create()
                lifetime = _lifetime(session.created, session.expires_at)
                self._token = session.authentication_token
                self._renew_at = started + lifetime - min(RENEW_MARGIN, lifetime / 2)
            return self._token

    def _send_chunk(self, chunk: Sequence[MeterEvent], deadline: float | None) -> list[Result]:
        body = request_body(chunk)
        key = _idempotency_key(chunk)
        try:
            if _passed(deadline):
                return _each(chunk, NOT_SENT)
            token = self.token()  # a 401 here is about the API key
            if _passed(deadline):
                return _each(chunk, NOT_SENT)
            try:
                self._post(body, token, key)
            except SESSION_REFUSED:
                token = self.token(expired=token)
                if _passed(deadline):  # the refused request did nothing: not sent
                    return _each(chunk, NOT_SENT)
                try:
                    self._post(body, token, f"{key}-renewed")
                except SESSION_REFUSED as exc:
                    return _each(chunk, _fresh_session_refused(exc))
        except Exception as exc:
            return _each(chunk, result_for_error("", exc))
        return [Result(event.identifier, Outcome.DELIVERED) for event in chunk]

    def _post(self, body: Mapping[str, object], token: str, key: str) -> None:
        self.client.v2.billing.meter_event_stream.create(
            body,  # type: ignore[arg-type]
            {"api_key": token, "idempotency_key": key},
        )


def _passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _each(chunk: Sequence[MeterEvent], result: Result) -> list[Result]:
    """One stream request's outcome, for each of its events."""
    return [replace(result, key=event.identifier) for event in chunk]


def _fresh_session_refused(exc: stripe.StripeError) -> Result:
    """Stripe refused the session it had just created: its trouble, not the key's."""
    return Result(
        "",
        Outcome.RETRY,
        "session_refused",
        f"Stripe refused a meter event session it had just created "
        f"({redact(str(exc.user_message))}); "
        "the events are sent again later.",
    )


def request_body(chunk: Sequence[MeterEvent]) -> dict[str, object]:
    """A stream request's parameters."""
    return {"events": _Events(_event(event) for event in chunk)}


class _Events(list[dict[str, object]]):
    """A stream request's events, sent as a JSON array like any list.

    stripe-python form-encodes every request's parameters before it looks at the API
    version, and a v2 request then sends JSON and throws the form away: for 100 events that
    is 600 URL-quoted values, over half a delivery worker's CPU. Its form encoder sends a
    value with an ``id`` attribute as that ``id`` alone, so this list costs it one empty
    value; the JSON body is unchanged (``tests/delivery`` reads it at the fake Stripe).
    """

    id = ""


def _event(event: MeterEvent) -> dict[str, object]:
    moment = event.timestamp.astimezone(UTC).isoformat(timespec="milliseconds")
    return {
        "event_name": event.event_name,
        "identifier": event.identifier,
        "payload": {"stripe_customer_id": event.customer_id, "value": str(event.value)},
        "timestamp": moment.replace("+00:00", "Z"),
    }


def _idempotency_key(chunk: Sequence[MeterEvent]) -> str:
    """Derived from the batch's identifiers, attempts and claims: each send is a new request
    (see :attr:`MeterEvent.claim`)."""
    digest = hashlib.sha256()
    for event in chunk:
        digest.update(f"{event.identifier}:{event.attempt}:{event.claim}\n".encode())
    return f"bfu-ms-{digest.hexdigest()}"


def _lifetime(created: str, expires_at: str) -> float:
    try:
        start = datetime.fromisoformat(created)
        end = datetime.fromisoformat(expires_at)
    except (TypeError, ValueError):
        return DEFAULT_LIFETIME
    seconds = (end - start).total_seconds()
    return seconds if seconds > 0 else DEFAULT_LIFETIME
