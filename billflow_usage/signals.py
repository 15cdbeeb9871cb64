"""Signals for host projects.

``usage_recorded``: a usage row was added to the ledger (not sent for a repeated identifier).
    ``sender`` is ``UsageEvent``; ``event`` is the new ``UsageEvent``. Sent inside the
    transaction that recorded it: use ``transaction.on_commit`` for side effects.

``usage_delivered``: Stripe accepted events. ``sender`` is the backend class; ``events`` is
    the list of ``UsageEvent`` rows now marked sent (every member row of an aggregated
    delivery group; a Stripe "already exists with identifier" answer counts as accepted).
    Sent once per delivery batch, after the batch's marking committed (when delivery runs
    inside a transaction of yours, after that block's marking, not your commit).

``delivery_failed``: events failed permanently (not retried until someone retries them).
    ``sender`` is the backend class; ``events`` is the list of ``UsageEvent`` rows that share
    one error; ``code`` and ``message`` are Stripe's error code and message as stored on the
    rows (``code`` may also be ``timestamp_too_far_in_past`` for events past Stripe's 35 days,
    or the last retryable error's code once ``MAX_ATTEMPTS`` ran out). Sent once per distinct
    (code, message) in a batch, after the marking committed.

``usage_threshold_crossed``: a customer's usage reached a threshold of its ``UsageLimit``
    (a percentage of the limit; 100 is the limit itself). ``sender`` is ``UsageLimit``;
    kwargs ``metric`` (the key), ``customer_id``, ``threshold`` (percent), ``used``,
    ``limit`` and ``period_start``. Sent once per threshold, customer, metric and billing
    period (the crossing is stored, so once across processes and restarts), after the commit
    that stored it: at once for usage recorded with ``enforce_limit=True``, else when the
    folding step (workers) counts the rows, trackers' and bulk paths' included.
"""

from django.dispatch import Signal

usage_recorded = Signal()
usage_delivered = Signal()
delivery_failed = Signal()
usage_threshold_crossed = Signal()
