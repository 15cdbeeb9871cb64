"""The one Tally that the ledger's rows, the daily rollups and the hourly totals add up with."""

from datetime import UTC, datetime

import pytest

from billflow_usage.models import Metric
from billflow_usage.models.tally import Tally, merge_into

NOON = datetime(2026, 4, 2, 12, tzinfo=UTC)
LATER = datetime(2026, 4, 2, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ((5, NOON, 9), (7, LATER, 1), 7),  # the later row, whatever its id
        ((5, NOON, 9), (7, NOON, 1), 5),  # same moment: the higher id
        ((5, NOON, 1), (7, NOON, 9), 7),
    ],
)
def test_last_is_the_latest_row_then_the_highest_id_in_either_order(first, second, expected):
    one, other = Tally.of_row(*first), Tally.of_row(*second)
    for merged in (one.merge(other), other.merge(one)):
        assert (merged.total, merged.events, merged.last_value) == (12, 2, expected)


def test_a_tally_without_rows_or_last_row_leaves_the_last_row_alone():
    row = Tally.of_row(4, NOON, 3)
    counted = Tally(Metric.Aggregation.LAST, 10, 2)  # a sum and count without their last row
    assert counted.merge(row).last_value == 4
    assert row.merge(counted).last_value == 4
    assert Tally().merge(row) == row


def test_the_figure_by_each_formula():
    tally = Tally.of_row(4, NOON, 3).merge(Tally.of_row(6, LATER, 2))
    assert tally.by_formula(Metric.Aggregation.SUM) == 10
    assert tally.by_formula(Metric.Aggregation.COUNT) == 2
    assert tally.by_formula(Metric.Aggregation.LAST) == 6
    assert Tally(Metric.Aggregation.COUNT, 10, 2).value == 2
    assert Tally().by_formula(Metric.Aggregation.LAST) == 0


def test_the_value_of_a_tally_without_formula_says_how_to_read_it():
    with pytest.raises(ValueError, match="by_formula"):
        _ = Tally.of_row(4, NOON, 3).value


def test_merge_into_adds_to_the_keys_tally():
    tallies: dict[str, Tally] = {}
    merge_into(tallies, "a", Tally.of_row(4, NOON, 3))
    merge_into(tallies, "a", Tally.of_row(6, LATER, 2))
    assert (tallies["a"].total, tallies["a"].events, tallies["a"].last_id) == (10, 2, 2)
