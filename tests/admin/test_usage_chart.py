"""The daily chart's geometry: scales, gaps and zero lines, without a browser."""

from __future__ import annotations

from datetime import date, timedelta

from billflow_usage.admin.usage_chart import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, build_chart
from billflow_usage.models import Metric
from billflow_usage.services.usage_figures import DailySeries

DAYS = [date(2026, 11, 1) + timedelta(days=n) for n in range(10)]


def series(key: str, values: dict[int, int], aggregation: str = "sum") -> DailySeries:
    metric = Metric(key=key, display_name=key.title(), aggregation=aggregation)
    return DailySeries(metric, DAYS, {DAYS[n]: value for n, value in values.items()})


def test_sum_meter_reads_zero_on_days_without_usage() -> None:
    chart = build_chart("cus_X", [series("calls", {2: 40, 5: 10})], DAYS)
    [line] = chart.series
    assert len(line.points) == len(DAYS)
    assert line.points[0].x == LEFT
    assert line.points[-1].x == WIDTH - RIGHT
    assert line.points[2].y == TOP  # the highest value is on the top line
    assert line.points[0].y == HEIGHT - BOTTOM  # zero on the bottom line
    assert line.points[2].title == "Calls: 40 on 2026-11-03"


def test_last_meter_has_points_only_where_reported() -> None:
    chart = build_chart("cus_X", [series("storage", {1: 7, 8: 3}, "last")], DAYS)
    assert [p.title for p in chart.series[0].points] == [
        "Storage: 7 on 2026-11-02",
        "Storage: 3 on 2026-11-09",
    ]


def test_axis_uses_whole_1_2_5_steps() -> None:
    chart = build_chart("cus_X", [series("calls", {0: 1234})], DAYS)
    assert [t.label for t in chart.y_ticks] == ["0", "500", "1,000", "1,500"]


def test_negative_corrections_put_the_axis_at_zero() -> None:
    chart = build_chart("cus_X", [series("calls", {0: 8, 1: -4})], DAYS)
    labels = [t.label for t in chart.y_ticks]
    assert labels == ["-5", "0", "5", "10"]
    zero = chart.y_ticks[labels.index("0")].position
    assert chart.x_axis_y == zero
    assert TOP < zero < HEIGHT - BOTTOM


def test_one_day_is_centred_and_labels_stay_few() -> None:
    single = build_chart("cus_X", [series("calls", {0: 1})], DAYS[:1])
    assert single.series[0].points[0].x == (LEFT + WIDTH - RIGHT) / 2
    month = [date(2026, 11, 1) + timedelta(days=n) for n in range(31)]
    wide = build_chart("cus_X", [DailySeries(Metric(key="calls"), month)], month)
    assert len(wide.x_ticks) <= 8
    assert wide.x_ticks[0].label == "Nov 1"


def test_series_get_distinct_styles_and_an_accessible_label() -> None:
    chart = build_chart("cus_X", [series("calls", {}), series("exports", {})], DAYS)
    assert len({(s.color, s.dash) for s in chart.series}) == 2
    assert chart.label == "Daily usage of cus_X, Nov 1 to Nov 10 (UTC): Calls, Exports"
