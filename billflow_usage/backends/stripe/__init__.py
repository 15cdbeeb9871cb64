"""The Stripe backend: Billing Meter events (v1 or the v2 stream), legacy usage records and
seat quantities, over ``stripe.StripeClient``."""

from billflow_usage.backends.stripe.backend import StripeBackend

__all__ = ["StripeBackend"]
