"""Idempotency keys as Stripe honours them on POST: replay the first answer for the same
parameters, refuse a key reused with different ones or while its first request still runs.

Stripe keeps the first answer for 24 hours whatever it was, 500s included, once the endpoint
began executing: a retry under the same key gets the same 500 back. Only requests that never
reached the endpoint leave nothing behind (validation failures, 401/403, rate limits, a 409
for a key in use, and faults injected before handling).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from .clock import Clock
from .errors import idempotency

#: Stripe prunes keys after 24 hours; a key is new again after that.
KEY_LIFETIME = 24 * 3600


@dataclass
class Reply:
    """A finished HTTP answer."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Entry:
    fingerprint: bytes
    created: float
    reply: Reply | None = None  # None while the first request is in flight


class IdempotencyStore:
    """Remembered answers by key, for 24 hours of ``clock`` (or until ``reset``)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or Clock()
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> bytes:
        """What must match for a replay (stripe-python encodes parameters deterministically)."""
        return hashlib.blake2b(f"{method} {path}\n".encode() + body, digest_size=16).digest()

    def begin(self, key: str, fingerprint: bytes) -> Reply | None:
        """The reply to replay, or None after claiming ``key`` for this request."""
        now = self._clock.now()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or now - entry.created >= KEY_LIFETIME:
                self._entries[key] = _Entry(fingerprint, now)
                return None
        if entry.fingerprint != fingerprint:
            raise idempotency(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request."
            )
        if entry.reply is None:
            raise idempotency(
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                "going through).",
                status=409,
                code="idempotency_key_in_use",
            )
        return entry.reply

    def finish(self, key: str, reply: Reply) -> None:
        """Store the endpoint's answer for replays, errors and 5xx included; a 429 (a rate
        limit refuses before the endpoint runs) is not kept."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:  # reset while the request ran
                return
            if reply.status == 429:
                del self._entries[key]
            else:
                entry.reply = reply

    def reset(self) -> None:
        """Forget every key."""
        with self._lock:
            self._entries.clear()
