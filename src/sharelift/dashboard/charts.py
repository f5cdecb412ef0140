"""The throughput chart, drawn by the server as inline SVG: one bar per minute (or hour) of the
run, in MB/s, with a title and a one-sentence description for those who cannot see it. No
script draws it and nothing is fetched: the page swaps the whole element on each update."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape

from sharelift.dashboard.throughput import Chart

MB = 1_000_000
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 40
MIN_SLOTS = 30
"""A short run's few bars keep a bar's width, from the left."""


def nice_ceiling(top: float) -> float:
    """A round number at or above `top` for the axis (1, 2, 2.5, 5 x 10^n)."""
    if top <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if top <= step * power:
            return step * power
    return 10 * power


def _when(seconds: float, unit: str) -> str:
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%H:%M") if unit == "minute" else moment.strftime("%a %H:00")


def describe(chart: Chart) -> str:
    """The chart in one sentence."""
    moving = [b for b in chart.bars if b.bytes]
    if not moving:
        return "Nothing has been sent in this run yet."
    total = sum(b.bytes for b in chart.bars)
    peak = max(chart.bars, key=lambda b: b.rate)
    return (
        f"{total / MB:,.1f} MB sent in {len(chart.bars)} {chart.unit}"
        f"{'s' if len(chart.bars) != 1 else ''}; at most "
        f"{peak.rate / MB:,.2f} MB/s, in the {chart.unit} from {_when(peak.start, chart.unit)} UTC."
    )


def svg(chart: Chart) -> str:
    """The chart as an SVG element (MB/s per bar; times in UTC)."""
    top = nice_ceiling(max((b.rate for b in chart.bars), default=0.0) / MB)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = max(len(chart.bars), 1)
    slot = plot_w / max(count, MIN_SLOTS)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        'aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">Throughput per {chart.unit}, in MB per second</title>',
        f'<desc id="chart-desc">{escape(describe(chart))}</desc>',
    ]
    for step in range(5):
        value = top * step / 4
        y = TOP + plot_h * (1 - step / 4)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    for index, bar in enumerate(chart.bars):
        height = plot_h * (bar.rate / MB / top)
        x = LEFT + index * slot
        parts.append(
            f'<rect class="bar" x="{x + slot * 0.1:.1f}" y="{TOP + plot_h - height:.1f}" '
            f'width="{max(slot * 0.8, 1.0):.1f}" height="{height:.1f}"/>'
        )
    every = math.ceil(max(count, MIN_SLOTS) / 6)  # at most six labels, never crowded
    for index in range(0, len(chart.bars), every):
        x = LEFT + (index + 0.5) * slot
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{_when(chart.bars[index].start, chart.unit)}</text>"
        )
    parts += [
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<text class="label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}" '
        f'text-anchor="middle">{chart.unit}s of the run (UTC)</text>',
        f'<text class="label" x="12" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">MB/s</text>',
        "</svg>",
    ]
    return "".join(parts)
