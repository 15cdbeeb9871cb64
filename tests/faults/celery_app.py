"""The Celery app of ``test_celery_delivery.py``'s processes, made as the example project's
``config/celery.py`` makes its own: configured from Django settings, tasks autodiscovered."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.faults.celery_settings")

app = Celery("billflow_usage_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
