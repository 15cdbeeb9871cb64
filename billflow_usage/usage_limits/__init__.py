"""Customer-facing usage and limits, computed from the ledger (no Stripe call).

- :mod:`.usage`: ``current_usage`` and daily totals over a billing period, exact: hourly
  totals of folded rows plus the rows not folded yet, summed live.
- :mod:`.folding`: the step off the hot path that folds rows into hourly totals (and notices
  threshold crossings of rows recorded without ``enforce_limit``).
- :mod:`.checking`: which ``UsageLimit`` applies, and ``check_limit``.
- :mod:`.enforcement`: ``record_usage(..., enforce_limit=True)``.
- :mod:`.crossings`: threshold crossings, stored once, announced after commit.
"""
