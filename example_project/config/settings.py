"""A small SaaS billed by usage, configured from the environment (and .env) with django-environ.

- ``DATABASE_URL``: default an SQLite file next to this project.
- ``STRIPE_SECRET_KEY``: a Stripe test key; without one the demo runs its embedded fake Stripe.
- ``STRIPE_API_BASE``: another Stripe address (a proxy, a fake on another port).
- ``FAKE_STRIPE_URL``, ``FAKE_STRIPE_STATE``: where the embedded fake Stripe listens (default
  ``http://127.0.0.1:12111``) and the file the demo saves its objects to.
- ``BILLFLOW_METER_API``: ``v1`` (default), ``v2`` or ``legacy``.
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "billflow_usage": {"handlers": ["console"], "level": env("LOG_LEVEL", default="WARNING")}
    },
}
