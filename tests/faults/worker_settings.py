"""Settings for the worker subprocesses of the SIGKILL test.

The delivery tests' worker settings (the ledger from ``DATABASE_URL``, the fake Stripe from
``FAKE_STRIPE_URL``) with ``METER_API`` from the environment, a one-second claim lease, so
a killed worker's rows are redone a second later, short retries, and in ``v2`` one stream
request at a time.
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
if BILLFLOW_USAGE["METER_API"] == "v2":
    # One stream request at a time: Stripe then holds a batch's first 100 events while its
    # second request is under way, the moment at which a kill matters (in parallel, a batch
    # is marked within milliseconds of Stripe storing it, too briefly to kill in between).
    BILLFLOW_USAGE["DELIVERY_CONCURRENCY"] = 1
