"""Load the Celery app when Django starts, so tasks enqueued by web requests (``delay()`` after
a commit) go through its broker and settings. Without the ``celery`` extra the project runs
as before: ``BILLFLOW_DELIVERY`` can't be ``celery`` then (system check
``billflow_usage.E007`` says so)."""

try:
    from config.celery import app as celery_app
except ModuleNotFoundError as exc:  # pragma: no cover - the celery extra is not installed
    if exc.name != "celery":
        raise
    celery_app = None

__all__ = ["celery_app"]
