"""Deterministic ledger identifiers for the events trackers record.

A tracker never draws a random identifier: the same change seen twice (the one-by-one
fallback of a bulk creation, a retried dispatch) maps to the same identifier, and the ledger
records it once; the installation's namespace keeps another database's changes apart. See
:class:`~billflow_usage.tracking.metered.MeteredTracker` for what each action hashes.
"""

from __future__ import annotations

from billflow_usage.identifiers import TRACKER_PREFIX, LibraryIdentifier, derived_identifier


def tracker_identifier(
    metric: str,
    model_label: str,
    key: object,
    action: str,
    version: str,
    customer_id: str,
    *,
    using: str | None = None,
) -> LibraryIdentifier:
    """Hash what names one tracked event into an identifier Stripe accepts (68 characters)."""
    return derived_identifier(
        TRACKER_PREFIX, (metric, model_label, key, action, version, customer_id), using=using
    )
