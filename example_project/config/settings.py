"""A small SaaS billed by usage, configured from the environment (and .env) with django-environ.

- ``DATABASE_URL``: default an SQLite file next to this project.
- ``STRIPE_SECRET_KEY``: a Stripe test key; without one the demo runs its embedded fake Stripe.
- ``STRIPE_API_BASE``: another Stripe address (a proxy, a fake on another port).
- ``FAKE_STRIPE_URL``, ``FAKE_STRIPE_STATE``: where the embedded fake Stripe listens (default
  ``http://127.0.0.1:12111``) and the file the demo saves its objects to.
- ``BILLFLOW_METER_API``: ``v1`` (default), ``v2`` or ``legacy``.
- ``BILLFLOW_DELIVERY``: ``worker`` (default), ``on_commit`` or ``celery``.
- ``CELERY_BROKER_URL``, ``CELERY_QUEUE``: Celery's broker (default RabbitMQ on
  ``127.0.0.1:5672``) and queue; Celery is configured below and in ``config/celery.py``, its
  beat schedule runs delivery every ``BILLFLOW_DELIVER_EVERY`` seconds (60) and
  ``billflow_sync`` every ``BILLFLOW_SYNC_EVERY`` seconds (3,600).
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env(DEBUG=(bool, True))
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="example-project-not-secret")
DEBUG = env("DEBUG")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djstripe",
    "billflow_usage",
    "saas",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "static/"

# Stripe: a test key from the environment, or the embedded fake Stripe that `make demo` starts
# at FAKE_STRIPE_URL and saves to FAKE_STRIPE_STATE when it ends; `make serve` serves that
# state again (`python -m billflow_usage.testing.fake_stripe --state FILE`) for runserver.
_stripe_test_key = env("STRIPE_SECRET_KEY", default="")
EMBEDDED_FAKE_STRIPE = (
    "" if _stripe_test_key else env("FAKE_STRIPE_URL", default="http://127.0.0.1:12111")
)
FAKE_STRIPE_STATE = Path(env("FAKE_STRIPE_STATE", default=str(BASE_DIR / "fake_stripe_state.json")))

# dj-stripe: workspaces are the Stripe customers' subscribers.
STRIPE_LIVE_MODE = False
STRIPE_TEST_SECRET_KEY = _stripe_test_key or "sk_test_embedded_fake_stripe"
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_SUBSCRIBER_MODEL = "saas.Workspace"
DJSTRIPE_SUBSCRIBER_MODEL_MIGRATION_DEPENDENCY = "0001_initial"
DJSTRIPE_WEBHOOK_SECRET = env("DJSTRIPE_WEBHOOK_SECRET", default="")

BILLFLOW_USAGE = {
    "BACKEND": "billflow_usage.backends.stripe.StripeBackend",
    "STRIPE_API_BASE": env("STRIPE_API_BASE", default=EMBEDDED_FAKE_STRIPE or None),
    "METER_API": env("BILLFLOW_METER_API", default="v1"),
    "DELIVERY": env("BILLFLOW_DELIVERY", default="worker"),
    # Short retry delays so the demo's unreliable fake Stripe is drained in seconds; keep the
    # defaults (2 s doubling up to an hour) in production.
    "RETRY_BASE_DELAY": env.float("BILLFLOW_RETRY_BASE_DELAY", default=0.2),
    "RETRY_MAX_DELAY": env.float("BILLFLOW_RETRY_MAX_DELAY", default=2.0),
    # Whose usage billflow_usage.urls shows: the signed-in user's workspace.
    "CUSTOMER_FOR_REQUEST": "saas.views.workspace_for_request",
}

# Celery (config/celery.py reads the CELERY_* names). What matters for delivery is in
# docs/operations.md, "Celery": a task is acknowledged when it ends, and given back to the queue
# when its worker process dies; each process takes one task at a time; a hard time limit backs
# up the tasks' own. None of it makes delivery exactly once: the ledger's claims do.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="amqp://guest:guest@127.0.0.1:5672//")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="billflow-example")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=15 * 60)
_deliver_every = env.float("BILLFLOW_DELIVER_EVERY", default=60.0)
CELERY_BEAT_SCHEDULE = {
    # Retries, aggregation windows and seat pushes go out without new traffic; the time limit
    # stops a run cleanly (unsent rows are given back) before the next one is due.
    "billflow-deliver": {
        "task": "billflow_usage.tasks.deliver_usage",
        "schedule": _deliver_every,
        "kwargs": {"time_limit": _deliver_every * 5 / 6},
    },
    # billflow_sync hourly: refresh links, deliver, compare with Stripe; drift is logged at
    # WARNING and kept as a report in the admin (add "kwargs": {"apply": True} to repair it).
    "billflow-sync": {
        "task": "billflow_usage.tasks.sync_usage",
        "schedule": env.float("BILLFLOW_SYNC_EVERY", default=3600.0),
    },
    # billflow_prune daily: delivered rows of closed periods older than this become rollups.
    "billflow-prune": {
        "task": "billflow_usage.tasks.prune_usage",
        "schedule": env.float("BILLFLOW_PRUNE_EVERY", default=86400.0),
        "kwargs": {"older_than": env.int("BILLFLOW_PRUNE_OLDER_THAN", default=90)},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "billflow_usage": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")}
    },
}
