"""Settings for the Celery worker, ``billflow_worker`` and producer processes of
``test_celery_delivery.py``.

The SIGKILL test's worker settings (the ledger from ``DATABASE_URL``, the fake Stripe from
``FAKE_STRIPE_URL``, short retries), a three-second claim lease so a killed process's rows are
redone three seconds later (one second is shorter than a batch takes on a busy machine), delivery
by Celery in batches small enough for a kill to land mid-drain, the broker
and a queue of the test run's own from the environment, and the Celery settings
docs/operations.md recommends.
"""

import os

from tests.faults.worker_settings import *  # noqa: F403

BILLFLOW_USAGE = {
    **BILLFLOW_USAGE,  # noqa: F405
    "DELIVERY": "celery",
    "BATCH_SIZE": 40,
    "CLAIM_LEASE": 3,
}

CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = os.environ["CELERY_QUEUE"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = 50
CELERY_TASK_TIME_LIMIT = 60

# The worker logs at INFO (each task received and its result); stripe-python's request lines
# would drown them.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"stripe": {"level": "WARNING"}},
}
