"""Signals for host projects.

``usage_recorded``: a usage row was added to the ledger (not sent for a repeated identifier).
    ``sender`` is ``UsageEvent``; ``event`` is the new ``UsageEvent``. Sent inside the
    transaction that recorded it: use ``transaction.on_commit`` for side effects.

``usage_delivered``: Stripe accepted events. ``sender`` is the backend class; ``events`` is
    the list of ``UsageEvent`` rows now marked sent. Sent after the delivery committed.

``delivery_failed``: events failed permanently (not retried until someone retries them).
    ``sender`` is the backend class; ``events`` is the list of ``UsageEvent`` rows; ``code``
    and ``message`` are Stripe's error code and message.
"""

from django.dispatch import Signal

usage_recorded = Signal()
usage_delivered = Signal()
delivery_failed = Signal()
