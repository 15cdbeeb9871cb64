"""System checks of the stored usage limits (``manage.py check --database default``).

The admin validates a limit as it is saved (``UsageLimit.clean``); these catch limits
written around it (``update()``, fixtures, SQL): a licensed metric, thresholds that are not
percentages from 1 to 100 (a negative limit can't be stored: a constraint refuses it). Like
every check that reads the database, they run only for the databases Django names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.core import checks
from django.db import DatabaseError, router, transaction

from billflow_usage.models import Metric, UsageLimit
from billflow_usage.models.usage_limit import threshold_problem

HINT = "Fix it in the admin (Usage limits); limits apply to metered metrics only."


@checks.register("billflow_usage", checks.Tags.database)
def check_usage_limits(
    app_configs: Any = None, databases: Iterable[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    alias = router.db_for_read(UsageLimit)
    if alias not in (databases or ()):
        return []
    try:
        with transaction.atomic(using=alias):
            limits = list(UsageLimit.objects.using(alias).select_related("metric"))
    except DatabaseError:
        return []  # not migrated yet (migrate runs the checks first)
    return [message for limit in limits for message in _problems(limit)]


def _problems(limit: UsageLimit) -> Iterator[checks.CheckMessage]:
    if limit.metric.kind != Metric.Kind.METERED:
        yield checks.Error(
            f"{limit}: metric {limit.metric.key!r} is licensed; a usage limit needs a metered "
            "metric.",
            hint=HINT,
            obj=limit,
            id="billflow_usage.E401",
        )
    problem = threshold_problem(limit.thresholds)
    if problem:
        yield checks.Error(f"{limit}: {problem}", hint=HINT, obj=limit, id="billflow_usage.E402")
