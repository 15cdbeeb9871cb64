"""Idempotency keys as Stripe honours them on POST: replay the first answer for the same
parameters, refuse a key reused with different ones or while its first request still runs."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from .errors import idempotency


@dataclass
class Reply:
    """A finished HTTP answer."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Entry:
    fingerprint: bytes
    reply: Reply | None = None  # None while the first request is in flight


class IdempotencyStore:
    """Remembered answers by key (kept until ``reset``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> bytes:
        """What must match for a replay (stripe-python encodes parameters deterministically)."""
        return hashlib.blake2b(f"{method} {path}\n".encode() + body, digest_size=16).digest()

    def begin(self, key: str, fingerprint: bytes) -> Reply | None:
        """The reply to replay, or None after claiming ``key`` for this request."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = _Entry(fingerprint)
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
        """Store the answer for replays; 429s and 5xx are not kept, as in Stripe."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:  # reset while the request ran
                return
            if reply.status == 429 or reply.status >= 500:
                del self._entries[key]
            else:
                entry.reply = reply

    def reset(self) -> None:
        """Forget every key."""
        with self._lock:
            self._entries.clear()
