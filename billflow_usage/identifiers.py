"""Identifiers for ledger rows: Stripe deduplicates meter events by them, the ledger forever.

The library makes its identifiers under prefixes of its own, which callers can't use
(``record_usage()`` refuses them), so a caller's identifier never collides with one of ours:

- ``bfu_``: drawn at random for usage recorded without an identifier (and failed tracker rows);
- ``bft_``: derived by trackers from the change they record;
- ``bfug_``: derived for a delivery group from its members;
- ``bfu_sync_``: derived by ``billflow_sync`` for a correction from the drift it repairs.

Derived identifiers are deterministic (a retry, a redo after a crash or a second run maps to
the same one) and hash the installation's namespace (:mod:`billflow_usage.installation`), so
two databases sending to one Stripe account never derive the same. Rows keep the identifier
they were stored with: a row recorded before namespaces existed is retried under its own.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

from django.db import router

from billflow_usage.installation import namespace
from billflow_usage.models import UsageEvent

GENERATED_PREFIX = "bfu_"
TRACKER_PREFIX = "bft_"
GROUP_PREFIX = "bfug_"
CORRECTION_PREFIX = "bfu_sync_"
#: Every prefix the library makes identifiers under: callers can't use them.
RESERVED_PREFIXES = (GENERATED_PREFIX, TRACKER_PREFIX, GROUP_PREFIX, CORRECTION_PREFIX)
#: Separates the parts before hashing, so ("a", "bc") and ("ab", "c") never collide.
SEPARATOR = "\x1f"


class LibraryIdentifier(str):
    """An identifier the library made: the only kind that may use a reserved prefix.

    The library's own writers (trackers, ``billflow_sync``) record through the public
    functions with these, which is how ``record_usage()`` tells them from a caller's.
    """

    __slots__ = ()


def new_identifier() -> str:
    """A fresh identifier for usage recorded without one (never collides, never reused)."""
    return f"{GENERATED_PREFIX}{uuid.uuid4().hex}"


def derived_identifier(
    prefix: str, parts: Iterable[object], *, digits: int = 64, using: str | None = None
) -> LibraryIdentifier:
    """``prefix`` and a hash of this installation's namespace and ``parts``.

    ``using`` is the ledger's database (by default, where usage events are written).
    """
    using = using or router.db_for_write(UsageEvent)
    text = SEPARATOR.join([namespace(using), *map(str, parts)])
    return LibraryIdentifier(prefix + hashlib.sha256(text.encode()).hexdigest()[:digits])


def reserved_prefix(identifier: str) -> str | None:
    """The library's prefix a caller's ``identifier`` starts with, if any."""
    if isinstance(identifier, LibraryIdentifier):
        return None
    return next((p for p in RESERVED_PREFIXES if identifier.startswith(p)), None)
