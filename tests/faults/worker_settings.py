"""Settings for the worker subprocesses of the SIGKILL test.

The delivery tests' worker settings (the ledger from ``DATABASE_URL``, the fake Stripe from
``FAKE_STRIPE_URL``) with ``METER_API`` from the environment, a one-second claim lease, so
a killed worker's rows are redone a second later, and short retries.
"""

import os

from tests.delivery.worker_settings import *  # noqa: F403

BILLFLOW_USAGE = {
    **BILLFLOW_USAGE,  # noqa: F405
    "METER_API": os.environ["METER_API"],
    "CLAIM_LEASE": 1,
    "RETRY_BASE_DELAY": 0.05,
    "RETRY_MAX_DELAY": 0.2,
    "MAX_ATTEMPTS": 100,
}
