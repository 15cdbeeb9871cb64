"""The delivery tests' fixtures, for the ledger tests that deliver to the fake Stripe."""

from tests.delivery.conftest import api_calls, configure, customer  # noqa: F401 (fixtures)
