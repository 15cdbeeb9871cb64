"""``billflow_prune``: what is compacted, what never is, the rollups' figures, batches,
crashes, dry runs and the command line."""

from __future__ import annotations

from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from billflow_usage.identifiers import CORRECTION_PREFIX
from billflow_usage.models import DeliveryGroup, Metric, UsageEvent, UsageRollup
from billflow_usage.models.usage_totals import Window, usage_tallies
from billflow_usage.services import pruning
from billflow_usage.services.pruning import cutoff_for, prune
from tests.factories import SubscriptionItemLinkFactory
from tests.retention.conftest import CUSTOMER, NOW, at, row

pytestmark = [pytest.mark.django_db, pytest.mark.now(NOW)]

ALL_TIME = (at("01-01 00:00"), at("12-31 00:00"))


def tallies(metrics: dict[str, Metric]) -> dict[tuple[object, ...], object]:
    """Every day's tally of every metric, sent rows counted (what readers add up)."""
    windows = [Window(metric.pk, *ALL_TIME) for metric in metrics.values()]
    return usage_tallies(windows, customers=[CUSTOMER], statuses=["sent"], by="day")


def rollup(metric: Metric, day: str) -> UsageRollup:
    return UsageRollup.objects.get(metric=metric, customer_id=CUSTOMER, day=date.fromisoformat(day))


def test_the_cutoff_is_never_inside_stripes_window() -> None:
    assert cutoff_for(35) == at("05-11 00:00")
    assert cutoff_for(40) == at("05-06 00:00")
    assert cutoff_for(1) == cutoff_for(35)


def test_sent_days_become_rollups_of_sum_count_and_last(metrics: dict[str, Metric]) -> None:
    for metric in metrics.values():
        row(metric, "04-02 08:00", 5)
        row(metric, "04-02 09:00", 7)
        row(metric, "04-02 09:00", 3)  # same moment, recorded last: the last value
        row(metric, "04-02 10:00", 100, cancelled=True)  # counted nowhere
    row(metrics["sum"], "04-03 10:00", 2)

    result = prune(35)

    assert (result.days, result.rows, result.days_left) == (4, 13, 0)
    assert not UsageEvent.objects.exists()
    summed = rollup(metrics["sum"], "2026-04-02")
    assert (summed.total, summed.events, summed.compacted_rows) == (15, 3, 4)
    assert rollup(metrics["count"], "2026-04-02").tally.value == 3
    last = rollup(metrics["last"], "2026-04-02")
    assert (last.tally.value, last.last_at) == (3, at("04-02 09:00"))
    assert rollup(metrics["sum"], "2026-04-03").total == 2


@pytest.mark.parametrize(
    "blocker",
    [
        {"pending": True},
        {"failed": True},
        {"claimed": True},
        {"sent": True, "identifier": f"{CORRECTION_PREFIX}abc"},
    ],
    ids=["pending", "failed", "claimed", "correction"],
)
def test_a_day_with_a_row_not_final_is_left_whole(
    metrics: dict[str, Metric], blocker: dict[str, object]
) -> None:
    metric = metrics["sum"]
    kept = [row(metric, "04-02 08:00", 5), row(metric, "04-02 09:00", 1, **blocker)]
    row(metric, "04-03 08:00", 5)  # another day: compacted

    result = prune(35)

    assert (result.days, result.days_left) == (1, 1)
    assert set(UsageEvent.objects.values_list("pk", flat=True)) == {e.pk for e in kept}
    assert not UsageRollup.objects.filter(day=date(2026, 4, 2)).exists()


def test_days_inside_stripes_window_are_left_alone(metrics: dict[str, Metric]) -> None:
    metric = metrics["sum"]
    row(metric, "05-10 23:59")  # the last day before the cutoff
    recent = row(metric, "05-11 00:00")

    assert prune(35).rows == 1

    assert list(UsageEvent.objects.values_list("pk", flat=True)) == [recent.pk]


def test_the_open_billing_period_is_left_alone_from_its_first_day(
    metrics: dict[str, Metric],
) -> None:
    metric = metrics["sum"]
    # A yearly subscription whose period began on 2026-04-20 09:00.
    SubscriptionItemLinkFactory(
        customer_id=CUSTOMER,
        metric=metric,
        current_period_start=at("04-20 09:00"),
        current_period_end=at("04-20 09:00") + timedelta(days=365),
    )
    row(metric, "04-19 23:00")  # the closed period's last whole day: compacted
    kept = [
        row(metric, "04-20 08:00"),  # the closed period, but on the open one's first day
        row(metric, "04-20 10:00"),
        row(metric, "05-01 10:00"),
    ]

    result = prune(35)

    assert (result.days, result.days_left) == (1, 2)
    assert set(UsageEvent.objects.values_list("pk", flat=True)) == {e.pk for e in kept}


def test_older_than_moves_the_cutoff_back(metrics: dict[str, Metric]) -> None:
    row(metrics["sum"], "04-02 08:00")
    row(metrics["sum"], "05-01 08:00")
    assert prune(60).rows == 1
    assert UsageEvent.objects.get().occurred_at == at("05-01 08:00")


def test_running_again_changes_nothing(metrics: dict[str, Metric]) -> None:
    for hour in range(5):
        row(metrics["last"], f"04-02 0{hour}:00", hour + 1)
    prune(35)
    before = list(UsageRollup.objects.values())

    again = prune(35)

    assert (again.days, again.rows) == (0, 0)
    assert list(UsageRollup.objects.values()) == before


def test_batches_add_up_to_one_rollup(metrics: dict[str, Metric]) -> None:
    for metric in metrics.values():
        for hour in range(7):
            row(metric, f"04-02 {hour:02d}:00", hour * 3 + 1)
        row(metric, "04-02 09:00", 50, cancelled=True)
    before = tallies(metrics)

    assert prune(35, batch_size=2).rows == 24

    assert not UsageEvent.objects.exists()
    assert tallies(metrics) == before
    assert UsageRollup.objects.count() == 3


def test_a_crash_mid_run_leaves_the_figures_and_the_next_run_finishes(
    metrics: dict[str, Metric], monkeypatch: pytest.MonkeyPatch
) -> None:
    for metric in metrics.values():
        for hour in range(6):
            row(metric, f"04-02 {hour:02d}:00", hour + 2)
    before = tallies(metrics)
    calls = 0
    add = pruning._add_to_rollup

    def crash_on_the_third_batch(*args: object) -> None:
        nonlocal calls
        calls += 1
        add(*args)  # type: ignore[arg-type]
        if calls == 3:
            raise RuntimeError("killed")

    monkeypatch.setattr(pruning, "_add_to_rollup", crash_on_the_third_batch)
    with pytest.raises(RuntimeError):
        prune(35, batch_size=4)

    # The first day done in two batches (4 + 2 rows); the next day's first batch crashed
    # after writing its rollup, and was rolled back whole.
    assert UsageEvent.objects.count() == 18 - 6
    assert UsageRollup.objects.count() == 1
    assert tallies(metrics) == before
    monkeypatch.undo()
    prune(35, batch_size=4)
    assert not UsageEvent.objects.exists()
    assert tallies(metrics) == before


def test_emptied_delivery_groups_are_deleted(metrics: dict[str, Metric]) -> None:
    metric = metrics["sum"]
    group = DeliveryGroup.objects.create(
        identifier="bfu_group_1",
        metric=metric,
        customer_id=CUSTOMER,
        value=3,
        occurred_at=at("04-02 08:00"),
        status=DeliveryGroup.Status.SENT,
    )
    row(metric, "04-02 07:59", 1, group=group)
    row(metric, "04-02 08:00", 2, group=group)

    prune(35)

    assert not DeliveryGroup.objects.exists()
    assert rollup(metric, "2026-04-02").total == 3


def test_a_dry_run_counts_and_changes_nothing(metrics: dict[str, Metric]) -> None:
    row(metrics["sum"], "04-02 08:00")
    row(metrics["sum"], "04-02 09:00", cancelled=True)
    row(metrics["sum"], "04-03 09:00", pending=True)
    out = StringIO()

    call_command("billflow_prune", "--older-than", "35", "--dry-run", stdout=out)

    assert "would compact 2 rows of 1 customer-metric days before 2026-05-11" in out.getvalue()
    assert "left 1 days alone" in out.getvalue()
    assert UsageEvent.objects.count() == 3
    assert not UsageRollup.objects.exists()


def test_the_command_compacts_and_says_so(metrics: dict[str, Metric]) -> None:
    row(metrics["sum"], "04-02 08:00")
    out = StringIO()
    call_command("billflow_prune", "--older-than=40", "--batch-size=10", stdout=out)
    assert "compacted 1 rows of 1 customer-metric days before 2026-05-06" in out.getvalue()
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--older-than", "34"], "'34' is not a whole number of days from 35 to 36500"),
        (["--older-than", "nan"], "'nan' is not a whole number of days"),
        (["--older-than", "40.5"], "'40.5' is not a whole number of days"),
        (["--older-than", "40", "--batch-size", "0"], "'0' is not a whole number of rows"),
        (["--older-than", "40", "--batch-size", "-5"], "'-5' is not a whole number of rows"),
    ],
)
def test_the_command_refuses_bad_numbers(arguments: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("billflow_prune", *arguments)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"older_than": 7}, "--older-than: 7 is not a whole number of days"),
        ({"older_than": True}, "--older-than: True is not"),
        ({"older_than": 40, "batch_size": 20_000}, "--batch-size: 20000 is not"),
        ({"older_than": float("inf")}, "--older-than: inf is not"),
    ],
)
def test_keyword_options_are_checked_too(options: dict[str, object], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("billflow_prune", **options)


def test_older_than_is_required() -> None:
    with pytest.raises(CommandError, match="--older-than"):
        call_command("billflow_prune")
