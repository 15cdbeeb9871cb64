"""``billflow_usage.tasks.prune_usage``: ``billflow_prune`` as a Celery beat task, called here
in-process (the example project schedules it daily)."""

from __future__ import annotations

import pytest

from billflow_usage import tasks
from billflow_usage.models import Metric, UsageEvent, UsageRollup
from tests.retention.conftest import NOW, row

pytestmark = [pytest.mark.django_db, pytest.mark.now(NOW)]


def test_the_task_compacts_as_the_command_does(metrics: dict[str, Metric]) -> None:
    row(metrics["sum"], "04-02 08:00", 5)
    row(metrics["sum"], "04-02 09:00", 7)
    kept = row(metrics["sum"], "06-14 09:00", 1)  # inside Stripe's window: never compacted

    assert tasks.prune_usage(older_than=40) == {"rows": 2, "days": 1, "days_left": 0}
    assert list(UsageEvent.objects.all()) == [kept]
    assert UsageRollup.objects.get().total == 12


@pytest.mark.parametrize("older_than", [0, 34, -1, 10**9])
def test_a_schedule_with_a_bad_age_fails_before_pruning(
    metrics: dict[str, Metric], older_than: int
) -> None:
    row(metrics["sum"], "04-02 08:00", 5)

    with pytest.raises(ValueError, match=r"prune_usage\(older_than=.*beat schedule"):
        tasks.prune_usage(older_than=older_than)
    assert UsageEvent.objects.count() == 1
