"""Stripe's limits that the schema itself enforces, shared by models and validation."""

from datetime import timedelta

#: Stripe rejects meter event values with more than 15 significant digits.
MAX_VALUE = 10**15 - 1
#: Stripe's meter event ``identifier`` is at most 100 characters.
IDENTIFIER_MAX_LENGTH = 100
#: Stripe object IDs: stored in a ``CharField(max_length=255)`` like dj-stripe does.
STRIPE_ID_MAX_LENGTH = 255
CUSTOMER_PREFIX = "cus_"
SUBSCRIPTION_ITEM_PREFIX = "si_"
#: Stripe only accepts meter events from this far back (so nothing older is sent, cancelled
#: or corrected: the days ``billflow_prune`` may compact).
STRIPE_HISTORY = timedelta(days=35)
