"""Geometry of the daily usage chart, drawn as inline SVG by a Django template.

Everything visual is computed here in plain numbers (no JavaScript, no CDN): the template
only places lines, points, labels and ``<title>`` tooltips.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from billflow_usage.models import Metric
from billflow_usage.services.usage_figures import DailySeries

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 48
#: At most this many date labels under the x axis.
MAX_X_LABELS = 8
#: Colours readable on light and dark admin themes, with a dash pattern each so series stay
#: distinguishable without colour.
STYLES = (
    ("#2f6fb0", ""),
    ("#c0392b", "6 3"),
    ("#2e8540", "2 3"),
    ("#8e44ad", "8 3 2 3"),
    ("#d35400", "4 4"),
    ("#16808a", "1 2"),
)


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Series:
    label: str
    color: str
    dash: str
    points: tuple[Point, ...]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Chart:
    label: str
    description: str
    series: tuple[Series, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    top: int = TOP
    bottom_edge: int = HEIGHT - BOTTOM

    # Where the axis labels go (whole pixels).
    @property
    def y_label_x(self) -> int:
        return self.left - 6

    @property
    def middle_y(self) -> int:
        return (self.top + self.bottom_edge) // 2

    @property
    def x_label_y(self) -> int:
        return self.bottom_edge + 16

    @property
    def x_title_y(self) -> int:
        return self.height - 6

    @property
    def x_axis_y(self) -> float:
        """Where the x axis is drawn: at value 0 when the scale has negatives."""
        zero = [tick.position for tick in self.y_ticks if tick.label == "0"]
        return zero[0] if zero else self.bottom_edge


def build_chart(customer_id: str, daily: Sequence[DailySeries], days: Sequence[date]) -> Chart:
    """One line per metered metric over ``days``, each within its own period (sum and count
    meters read 0 on days without usage; a ``last`` meter only has points on days it was
    reported)."""
    values = [v for series in daily for v in series.values.values()]
    low, high, step = _scale(min([0, *values]), max([0, *values]))
    plot_height = HEIGHT - BOTTOM - TOP

    def y(value: float) -> float:
        return TOP + plot_height * (high - value) / (high - low)

    def x(index: int) -> float:
        span = WIDTH - RIGHT - LEFT
        return LEFT + (span / 2 if len(days) == 1 else span * index / (len(days) - 1))

    lines = []
    for number, series in enumerate(daily):
        metric = series.metric
        color, dash = STYLES[number % len(STYLES)]
        # Sum and count meters read 0 on days of the period without usage.
        zero_days = set(series.days) if metric.aggregation != Metric.Aggregation.LAST else set()
        points = []
        for i, day in enumerate(days):
            if day in series.values or day in zero_days:
                value = series.values.get(day, 0)
                points.append(Point(x(i), y(value), _tooltip(metric, day, value)))
        lines.append(Series(str(metric), color, dash, tuple(points)))
    every = max(1, math.ceil(len(days) / MAX_X_LABELS))
    x_ticks = tuple(Tick(x(i), _day(day)) for i, day in enumerate(days) if i % every == 0)
    y_ticks = tuple(Tick(y(v), f"{v:,}") for v in range(low, high + 1, step))
    period = f"{_day(days[0])} to {_day(days[-1])}" if days else "no days"
    names = ", ".join(line.label for line in lines) or "no metered metric"
    return Chart(
        label=f"Daily usage of {customer_id}, {period} (UTC): {names}",
        description="Each line is one metered metric; hover a point for its day and value. "
        "The totals table above has the period's figures.",
        series=tuple(lines),
        x_ticks=x_ticks,
        y_ticks=y_ticks,
    )


def _scale(low: int, high: int) -> tuple[int, int, int]:
    """Whole-number axis bounds and a 1-2-5 step giving about five intervals."""
    if high == low:
        high = low + 1
    raw = (high - low) / 5
    magnitude = 10 ** max(0, math.floor(math.log10(raw))) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _tooltip(metric: Metric, day: date, value: int) -> str:
    return f"{metric}: {value:,} on {day.isoformat()}"


def _day(day: date) -> str:
    return f"{day:%b} {day.day}"
