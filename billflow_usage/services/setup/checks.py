"""System checks on the declared metrics (``billflow_usage.W301``, ``W302``): a metric whose
usage can't reach an invoice as declared is never accepted silently. Tagged ``database``, so
they run with ``manage.py check --database default`` (and ``migrate``), as Django asks of
checks that read the database."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core import checks
from django.db import DatabaseError, router, transaction

from billflow_usage.conf import billflow_settings
from billflow_usage.models import Metric
from billflow_usage.services.setup.declared import declared_lacks


@checks.register("billflow_usage", checks.Tags.database)
def check_declared_metrics(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    alias = router.db_for_read(Metric)
    if alias not in (databases or ()):
        return []
    try:
        with transaction.atomic(using=alias):
            metrics = list(Metric.objects.using(alias).filter(active=True, stripe_price_id=""))
    except DatabaseError:
        return []  # not migrated yet (migrate runs the checks first)
    legacy = billflow_settings.METER_API == "legacy"
    return [
        checks.Warning(lack.message, hint=lack.fix, obj=metric, id=lack.id)
        for metric in metrics
        for lack in declared_lacks(metric, legacy=legacy)
    ]
