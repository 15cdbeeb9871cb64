"""Fixtures shared with tests/reconcile: the Stripe account in the fake Stripe server."""

from tests.reconcile.conftest import account, configure  # noqa: F401
