"""Chart geometry for the dashboard: the templates draw it as inline SVG, no script needed.

Each chart carries its own title; the templates put a table of the same figures next to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least `value` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class HBar:
    """One horizontal bar: its row label, the figure printed after it and its geometry."""

    label: str
    text: str
    y: float
    width: float
    css: str = ""


@dataclass(frozen=True)
class HBarChart:
    """Horizontal bars, one per row."""

    title: str
    bars: list[HBar]
    width: int = 500
    label_width: int = 130
    row_height: int = 26
    bar_height: int = 16

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * self.row_height + 8

    @property
    def plot_width(self) -> int:
        return self.width - self.label_width - 120


def hbar_chart(
    title: str,
    rows: Sequence[tuple[str, float, str]],
    *,
    scale: float | None = None,
    css: Callable[[str], str] = lambda label: "",
) -> HBarChart:
    """Bars for (label, value, printed figure) rows; `scale` is the value of a full bar (default: the largest)."""
    chart = HBarChart(title=title, bars=[])
    top = scale if scale is not None else nice_ceiling(max((value for _, value, _ in rows), default=0.0))
    for i, (label, value, text) in enumerate(rows):
        width = chart.plot_width * min(1.0, max(0.0, value / top)) if top > 0 else 0.0
        chart.bars.append(HBar(label, text, y=4 + i * chart.row_height, width=width, css=css(label)))
    return chart


@dataclass(frozen=True)
class Segment:
    """Part of a column: one series' share."""

    series: str
    css: str
    value: int
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    """One stacked column (a day)."""

    label: str
    x: float
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    """A horizontal grid line with its value."""

    y: float
    text: str


@dataclass(frozen=True)
class ColumnChart:
    """Stacked columns with a value axis and a legend."""

    title: str
    columns: list[Column]
    ticks: list[Tick]
    legend: list[tuple[str, str]]
    column_width: float
    width: int = 1000
    height: int = 240
    left: int = 44
    top: int = 10
    bottom: int = 36

    @property
    def baseline(self) -> int:
        return self.height - self.bottom


def column_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[int]]],
    *,
    width: int = 1000,
    height: int = 240,
) -> ColumnChart:
    """Stacked columns: one per label, each stacking the series (name, css class, values per label)."""
    left, top, bottom = 44, 10, 36
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))]
    scale = nice_ceiling(max(totals, default=0))
    plot_height = height - top - bottom
    slot = (width - left - 8) / max(1, len(labels))
    column_width = max(4.0, slot * 0.7)
    columns = []
    for i, label in enumerate(labels):
        y = float(height - bottom)
        segments = []
        for name, css, values in series:
            h = plot_height * values[i] / scale
            y -= h
            segments.append(Segment(name, css, values[i], y, h))
        columns.append(Column(label, left + i * slot + (slot - column_width) / 2, totals[i], segments))
    ticks = [Tick(height - bottom - plot_height * k / 4, f"{scale * k / 4:g}") for k in range(5)]
    return ColumnChart(
        title=title,
        columns=columns,
        ticks=ticks,
        legend=[(name, css) for name, css, _ in series],
        column_width=column_width,
        width=width,
        height=height,
        left=left,
        top=top,
        bottom=bottom,
    )
