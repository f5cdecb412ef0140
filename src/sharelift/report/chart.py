"""The throughput chart of the HTML report: the round's samples (`StateStore.round_samples`)
folded into at most BUCKETS intervals, drawn as inline SVG by the server (no script, no
network), with a text description and the same figures as a table for those who cannot see it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from sharelift.report.summary import parse_time
from sharelift.state import RoundSample

BUCKETS = 120
MIN_INTERVAL = 2.0
"""Seconds: the engine samples about this often, so no interval is shorter."""
MB = 1_000_000
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44


@dataclass(frozen=True)
class Interval:
    """One interval of the run: its end (seconds from the round's start), the bytes and
    files done in it, and the bytes per second."""

    end: float
    length: float
    bytes: int
    files: int

    @property
    def rate(self) -> float:
        return self.bytes / self.length if self.length > 0 else 0.0


def intervals(samples: Iterable[RoundSample], start: str, end: str) -> list[Interval]:
    """The run from `start` to `end` (ISO UTC) in equal intervals (at most BUCKETS, none
    shorter than MIN_INTERVAL): what each one moved. The samples' running totals are read as
    a line between samples (the engine samples every few seconds, never on an interval's
    edge), streamed; a rewind (bytes sent again after a failed attempt) counts as 0."""
    t0 = parse_time(start)
    duration = max((parse_time(end) - t0).total_seconds(), 0.0)
    count = max(1, min(BUCKETS, math.ceil(duration / MIN_INTERVAL)))
    width = max(duration / count, MIN_INTERVAL) if duration > 0 else MIN_INTERVAL
    edges: list[tuple[float, float]] = []  # (bytes, files) done at the end of each interval
    before = (0.0, 0.0, 0.0)  # (seconds, bytes, files) of the sample before
    for sample in samples:
        at = max((parse_time(sample.at) - t0).total_seconds(), before[0])
        now = (at, float(sample.bytes_done), float(sample.files_done))
        while len(edges) < count and (len(edges) + 1) * width <= at:
            edge = (len(edges) + 1) * width
            share = (edge - before[0]) / (at - before[0]) if at > before[0] else 1.0
            edges.append(
                (
                    before[1] + (now[1] - before[1]) * share,
                    before[2] + (now[2] - before[2]) * share,
                )
            )
        before = now
    while len(edges) < count:
        edges.append((before[1], before[2]))
    found: list[Interval] = []
    done_bytes = done_files = 0.0
    for index, (edge_bytes, edge_files) in enumerate(edges):
        found.append(
            Interval(
                end=(index + 1) * width,
                length=width,
                bytes=max(round(edge_bytes - done_bytes), 0),
                files=max(round(edge_files - done_files), 0),
            )
        )
        done_bytes, done_files = edge_bytes, edge_files
    return found


def _nice(top: float) -> float:
    """A round number at or above `top` for the axis (1, 2, 2.5, 5 x 10^n)."""
    if top <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if top <= step * power:
            return step * power
    return 10 * power


def clock(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on."""
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def svg(found: list[Interval], title_id: str = "chart-title", desc_id: str = "chart-desc") -> str:
    """The chart as an inline SVG element: MB/s (1 MB = 1,000,000 bytes) over time."""
    peak = max((i.rate for i in found), default=0.0) / MB
    top = _nice(peak)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = found[-1].end if found else 1.0
    total_bytes = sum(i.bytes for i in found)
    average = total_bytes / span / MB if span > 0 else 0.0

    def x(t: float) -> float:
        return LEFT + plot_w * (t / span if span > 0 else 0)

    def y(rate: float) -> float:
        return TOP + plot_h * (1 - rate / MB / top)

    points = [(x(0), y(0))]
    for interval in found:
        start = interval.end - interval.length
        points += [(x(max(start, 0)), y(interval.rate)), (x(interval.end), y(interval.rate))]
    points.append((x(span), y(0)))
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">Throughput over the run, in MB per second</title>',
        f'<desc id="{desc_id}">{escape(describe(found))}</desc>',
    ]
    for step in range(5):
        value = top * step / 4
        ty = y(value * MB)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}"/>'
            f'<text class="tick" x="{LEFT - 8}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{value:g}</text>"
        )
    for step in range(5):
        t = span * step / 4
        parts.append(
            f'<text class="tick" x="{x(t):.1f}" y="{HEIGHT - BOTTOM + 18}" '
            f'text-anchor="middle">{clock(t)}</text>'
        )
    parts += [
        f'<polygon class="area" points="{path}"/>',
        f'<polyline class="rate" points="{path}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>',
        f'<text class="label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" '
        'text-anchor="middle">time since the round started (m:ss)</text>',
        f'<text class="label" x="14" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})">MB/s</text>',
    ]
    if average > 0:
        ay = y(average * MB)
        parts.append(
            f'<line class="average" x1="{LEFT}" y1="{ay:.1f}" x2="{WIDTH - RIGHT}" y2="{ay:.1f}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def describe(found: list[Interval]) -> str:
    """The chart in one sentence (its SVG description)."""
    if not found or not any(i.bytes for i in found):
        return "Nothing was sent during the round."
    peak = max(found, key=lambda i: i.rate)
    span = found[-1].end
    total = sum(i.bytes for i in found)
    return (
        f"{total / MB:,.1f} MB sent over {clock(span)}: {total / MB / span:,.2f} MB/s on "
        f"average, at most {peak.rate / MB:,.2f} MB/s (in the interval ending at "
        f"{clock(peak.end)})."
    )
