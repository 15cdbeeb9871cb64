"""Delivery: claim due ledger rows, group them, send them through the backend, mark them.

``deliver_pending()`` is the entry point; ``billflow_worker``, the Celery task and the
on_commit attempt all call it.
"""

from billflow_usage.delivery.engine import deliver_batch, deliver_pending
from billflow_usage.delivery.stats import DeliveryStats

__all__ = ["DeliveryStats", "deliver_batch", "deliver_pending"]
