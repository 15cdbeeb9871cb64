"""The sync report tests run billflow_sync against tests/reconcile's Stripe account."""

from tests.reconcile.conftest import account, configure  # noqa: F401 (fixtures)
