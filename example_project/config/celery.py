"""The example's Celery app: configured from the ``CELERY_*`` Django settings (read from the
environment with django-environ in ``settings.py``), tasks autodiscovered from the installed
apps (``billflow_usage.tasks``), the periodic work in ``CELERY_BEAT_SCHEDULE``::

    BILLFLOW_DELIVERY=celery celery -A config worker --concurrency 2 --loglevel info
    celery -A config beat --loglevel info

With ``BILLFLOW_DELIVERY=celery`` each committed transaction that records usage enqueues one
delivery task; beat sends delivery every minute anyway (retries, seat pushes) and reconciles
hourly.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
