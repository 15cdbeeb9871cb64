"""The ``BILLFLOW_USAGE`` settings dict, read through one object with every default here.

Values are read on each access (not cached at import) so ``override_settings`` and
``settings`` fixtures work; validation lives in :mod:`billflow_usage.checks`, never here.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

SETTINGS_NAME = "BILLFLOW_USAGE"

DEFAULTS: dict[str, Any] = {
    # Where usage goes: a dotted path to a billflow_usage.backends.base.BaseBackend subclass.
    "BACKEND": "billflow_usage.backends.stripe.StripeBackend",
    # Stripe access. None means "dj-stripe's configured secret key".
    "STRIPE_API_KEY": None,
    # One base URL for both the "api" and "meter_events" addresses (local fakes, proxies).
    "STRIPE_API_BASE": None,
    # A connected account ("acct_...") to act on behalf of.
    "STRIPE_ACCOUNT": None,
    # "v1" one request per event, "v2" session + stream, "legacy" pre-meter usage records.
    "METER_API": "v1",
    # "on_commit" tries right after commit in-process; "worker" leaves it to workers;
    # "celery" enqueues a task.
    "DELIVERY": "on_commit",
    # Seconds the in-process on_commit attempt may spend before leaving the rest pending.
    "ON_COMMIT_TIMEOUT": 2.0,
    # Events claimed per worker batch.
    "BATCH_SIZE": 500,
    # Stripe requests one worker keeps in flight at once: v2 stream requests of 100 events,
    # or in v1/legacy that many customers x meters, each still one request at a time.
    "DELIVERY_CONCURRENCY": 8,
    # Seconds a worker's claim is held before another worker may redo it.
    "CLAIM_LEASE": 300,
    # Sum meters: pending events of one customer and metric within this many seconds become
    # one Stripe event. 0 turns aggregation off.
    "AGGREGATION_WINDOW": 0,
    # Retries: attempts before an event is failed (20 outlast at least 4.5 hours of outage),
    # and the exponential backoff bounds. Rows waiting out an outage are retried as soon as
    # Stripe answers again, whatever is left of their delay.
    "MAX_ATTEMPTS": 20,
    "RETRY_BASE_DELAY": 2.0,
    "RETRY_MAX_DELAY": 3600.0,
    # Stripe allows 200 quantity updates per hour per subscription; stay below it.
    "SEAT_UPDATES_PER_HOUR": 150,
    # Used for licensed metrics that don't set their own.
    "DEFAULT_PRORATION_BEHAVIOR": "create_prorations",
    # Dotted paths to callables that declare trackers (run when the app is ready).
    "TRACKERS": [],
    # Import "<app>.usage" in every installed app, like admin.py.
    "AUTODISCOVER": True,
    # billflow_sync: the most recent seconds left out of the comparison with Stripe, whose
    # meter event summaries are eventually consistent.
    "SETTLING_WINDOW": 3600,
    # billflow_sync: Stripe requests per second at most (0 = no limit). Test mode and
    # sandboxes allow 25 operations/s in all; live mode far more.
    "SYNC_RATE_LIMIT": 20,
    # billflow_sync: trust dj-stripe's synced subscriptions for a customer when all of them
    # were updated (by a sync or a webhook) within this many seconds; None never does.
    "DJSTRIPE_MAX_AGE": 3600,
    # The signing secret ("whsec_...") of the Event Destination that posts meter error
    # reports to billflow_usage.views.meter_error_webhook.
    "METER_WEBHOOK_SECRET": None,
    # Seconds a meter error webhook request's signature stays valid (Stripe's libraries use
    # 300): older requests are refused as replays, before any database or Stripe work.
    "METER_WEBHOOK_TOLERANCE": 300,
    # billflow_status and the admin's summary: seconds the oldest pending row may wait before
    # delivery counts as lagging (degraded, exit 1).
    "STATUS_MAX_LAG": 900,
    # billflow_status: failed rows tolerated before the ledger counts as degraded (exit 1).
    "STATUS_MAX_FAILED": 0,
    # billflow_status: seconds pending rows may keep failing with nothing delivered before
    # Stripe counts as unreachable (broken, exit 2).
    "STATUS_UNREACHABLE_AFTER": 1800,
    # billflow_usage.urls' usage view: a dotted path to a callable taking the request and
    # returning its customer (a "cus_..." ID, a dj-stripe Customer or subscriber) or None.
    "CUSTOMER_FOR_REQUEST": None,
}


class BillflowSettings:
    """Attribute access to ``settings.BILLFLOW_USAGE`` merged over :data:`DEFAULTS`."""

    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, SETTINGS_NAME, None)
        return value if isinstance(value, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"{SETTINGS_NAME} has no setting {name!r}")
        return self.user_settings().get(name, DEFAULTS[name])

    @property
    def stripe_api_key(self) -> str:
        """The key to call Stripe with: ours, else dj-stripe's, else empty."""
        configured = self.user_settings().get("STRIPE_API_KEY")
        if configured:
            return str(configured)
        from djstripe.settings import djstripe_settings

        return str(djstripe_settings.STRIPE_SECRET_KEY or "")

    @property
    def livemode(self) -> bool:
        """Whether recorded usage is live money: decided by the configured key's prefix."""
        return self.stripe_api_key.startswith(("sk_live_", "rk_live_"))


billflow_settings = BillflowSettings()
