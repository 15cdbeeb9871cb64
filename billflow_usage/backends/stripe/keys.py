"""Idempotency keys that name a meter event: its identifier when a header can carry it.

``record_usage()`` only takes identifiers of printable ASCII, but rows recorded before it
refused the rest may hold any character. Such an identifier still goes to Stripe as it is, in
the request's body; in the ``Idempotency-Key`` header, which can't carry it (the request
fails before it is sent, like an outage, on every attempt), a hash of it stands in.
"""

from __future__ import annotations

import hashlib
import re

from billflow_usage.backends.base import MeterEvent

#: What a header value carries as it is: visible ASCII, no space or control character.
HEADER_SAFE = re.compile(r"[!-~]+")
#: The keys of v1 meter event requests: ``bfu-me-<identifier>-<attempt>-<claim>``, the claim
#: being the engine's token (32 hex digits) or none, and before claims were named
#: ``bfu-me-<identifier>-<attempt>``. The identifier is the shortest that leaves such a tail.
METER_EVENT_PREFIX = "bfu-me"
METER_EVENT_KEY_RE = re.compile(r"bfu-me-(?P<identifier>.+?)-\d+(?:-(?:[0-9a-f]{32})?)?")


def identifier_key(prefix: str, identifier: str, *rest: object) -> str:
    """``prefix-identifier-rest...``, with ``prefixh-<sha256>`` in place of the first two
    for an identifier a header can't carry.

    Deterministic in what it is given; the ``h`` after the prefix keeps a hashed key from ever
    equalling another identifier's plain one.
    """
    if HEADER_SAFE.fullmatch(identifier):
        head = f"{prefix}-{identifier}"
    else:
        digest = hashlib.sha256(identifier.encode("utf-8", "surrogatepass")).hexdigest()
        head = f"{prefix}h-{digest}"
    return "-".join([head, *map(str, rest)])


def meter_event_key(event: MeterEvent) -> str:
    """The idempotency key of a v1 meter event request: new per attempt and per claim."""
    return identifier_key(METER_EVENT_PREFIX, event.identifier, event.attempt, event.claim)


def identifier_in_key(name: str) -> str | None:
    """The identifier a v1 meter event request's key was made from (Stripe's error reports
    may name a request by its key), or None when ``name`` is no such key."""
    found = METER_EVENT_KEY_RE.fullmatch(name)
    return found.group("identifier") if found else None
