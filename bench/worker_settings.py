"""Settings for the worker processes benchmarks start: the benchmark settings, delivering with
the Stripe backend; ``BENCH_BILLFLOW_USAGE`` (JSON) adds ``BILLFLOW_USAGE`` keys, including
``STRIPE_API_BASE``, the fake Stripe's URL."""

import json
import os

from bench.settings import *  # noqa: F403

BILLFLOW_USAGE = {
    "BACKEND": "billflow_usage.backends.stripe.StripeBackend",
    "STRIPE_API_KEY": "sk_test_bench",
    "DELIVERY": "worker",
    **json.loads(os.environ["BENCH_BILLFLOW_USAGE"]),
}
