"""Deterministic ledger identifiers for the events trackers record.

A tracker never draws a random identifier: the same event seen twice (a repeated save, a
bulk-created object saved later, a retried dispatch) maps to the same identifier, and the
ledger records it once. See :class:`~billflow_usage.tracking.metered.MeteredTracker` for the
version each action uses.
"""

from __future__ import annotations

import hashlib

PREFIX = "bft_"
#: Separates the parts before hashing, so ("a", "bc") and ("ab", "c") never collide.
SEPARATOR = "\x1f"


def tracker_identifier(
    metric: str, model_label: str, key: object, action: str, version: str
) -> str:
    """Hash what names one tracked event into an identifier Stripe accepts (68 characters)."""
    parts = (metric, model_label, str(key), action, version)
    return PREFIX + hashlib.sha256(SEPARATOR.join(parts).encode()).hexdigest()
