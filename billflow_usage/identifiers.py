"""Identifiers for ledger rows: Stripe deduplicates meter events by them, the ledger forever."""

import uuid

PREFIX = "bfu_"


def new_identifier() -> str:
    """A fresh identifier for usage recorded without one (never collides, never reused)."""
    return f"{PREFIX}{uuid.uuid4().hex}"
