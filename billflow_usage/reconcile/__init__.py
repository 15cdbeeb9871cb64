"""Reconciliation behind ``manage.py billflow_sync``: refresh subscription item links, deliver
what is pending, compare the ledger with Stripe (metered usage and seats), list unbilled
usage, and with ``apply`` repair what can be repaired.

Layers: this package uses the delivery engine and the backend's read methods (plain data);
it never talks to stripe-python itself. :func:`run_sync` is the entry point.
"""

from billflow_usage.reconcile.report import SCHEMA_VERSION, Report
from billflow_usage.reconcile.run import SyncOptions, run_sync

__all__ = ["SCHEMA_VERSION", "Report", "SyncOptions", "run_sync"]
