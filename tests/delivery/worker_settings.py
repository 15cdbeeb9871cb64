"""Settings for the worker subprocess test: the test settings on a file database, without
migrations (tables are created directly), pointed at the in-process fake Stripe server."""

import os

from tests.settings import *  # noqa: F403

MIGRATION_MODULES = {
    app.rsplit(".", 1)[-1]: None
    for app in INSTALLED_APPS  # noqa: F405
}
BILLFLOW_USAGE = {
    "BACKEND": "billflow_usage.backends.stripe.StripeBackend",
    "STRIPE_API_KEY": "sk_test_worker_subprocess",
    "STRIPE_API_BASE": os.environ["FAKE_STRIPE_URL"],
    "DELIVERY": "worker",
}
