"""Idempotency keys that name a meter event: its identifier when a header can carry it.

``record_usage()`` only takes identifiers of printable ASCII, but rows recorded before it
refused the rest may hold any character. Such an identifier still goes to Stripe as it is, in
the request's body; in the ``Idempotency-Key`` header, which can't carry it (the request
fails before it is sent, like an outage, on every attempt), a hash of it stands in.
"""

from __future__ import annotations

import hashlib
import re

#: What a header value carries as it is: visible ASCII, no space or control character.
HEADER_SAFE = re.compile(r"[!-~]+")


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
