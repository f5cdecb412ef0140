"""Throughput over the run, from the rounds' samples, read once each.

The engine's progress saver writes each running round's running totals every ~2 s
(`StateStore.add_round_sample`). `Throughput` reads only the samples written since its last
look (`StateStore.samples_since`), turns each into what moved since the round's sample before,
and adds that to the round's minute. A chart of the run sums the minutes of the rounds asked
for: per minute over a window of up to `MINUTES_UP_TO`, per hour beyond.

Samples of different processes sharing a store become visible when each commits (within a
second), not in the order of their times: every look re-reads the last `OVERLAP` seconds and
skips what a round already gave, so that a late commit is not lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sharelift.report.summary import parse_time
from sharelift.state import RoundSample

MINUTES_UP_TO = timedelta(hours=3)
"""A window up to this long is drawn per minute; a longer one per hour."""
OVERLAP = 10.0
"""Seconds of samples each look reads again (see the module docstring)."""
NOW = 20.0
"""Seconds the present rate is measured over: about ten samples of each round."""
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Bar:
    """One minute or hour of the run: when it starts (seconds since the epoch), how long
    it has lasted so far (the last one is still going), and what moved in it."""

    start: float
    length: float
    bytes: int
    files: int

    @property
    def rate(self) -> float:
        """Bytes per second."""
        return self.bytes / self.length if self.length > 0 else 0.0


@dataclass(frozen=True)
class Chart:
    """The run's throughput as bars of one `unit` ("minute" or "hour")."""

    unit: str
    bars: list[Bar]


class Throughput:
    """What every round moved, by minute, from the samples read so far."""

    def __init__(self) -> None:
        self.seen_until = ""
        """The latest sample time read (ISO UTC; "" before the first look)."""
        self._last: dict[int, tuple[float, int, int]] = {}
        """Round id -> (time, bytes done, files done) of its latest sample."""
        self._minutes: dict[int, dict[int, list[int]]] = {}
        """Round id -> minute (seconds since the epoch // 60) -> [bytes, files]."""
        self._recent: deque[tuple[float, int, int, int]] = deque()
        """(time, round id, bytes, files) of the moves of the last NOW seconds."""

    def since(self) -> str:
        """The instant the next look reads from (OVERLAP seconds before the latest read)."""
        if not self.seen_until:
            return ""
        back = parse_time(self.seen_until) - timedelta(seconds=OVERLAP)
        return back.strftime(_FORMAT)

    def take(self, samples: Iterable[tuple[int, RoundSample]]) -> None:
        """Add samples (round id, sample), oldest first; those a round already gave are
        skipped."""
        for round_id, sample in samples:
            at = parse_time(sample.at).timestamp()
            last = self._last.get(round_id)
            if last is not None and at <= last[0]:
                continue
            before_bytes, before_files = (last[1], last[2]) if last else (0, 0)
            # A rewind (bytes sent again after a failed attempt) moves nothing.
            moved = max(sample.bytes_done - before_bytes, 0)
            files = max(sample.files_done - before_files, 0)
            self._last[round_id] = (at, sample.bytes_done, sample.files_done)
            if sample.at > self.seen_until:
                self.seen_until = sample.at
            if moved or files:
                cell = self._minutes.setdefault(round_id, {}).setdefault(int(at // 60), [0, 0])
                cell[0] += moved
                cell[1] += files
                self._recent.append((at, round_id, moved, files))

    def rate_now(self, rounds: set[int], now: datetime) -> tuple[float, float]:
        """Bytes and files per second of these rounds over the last NOW seconds."""
        cut = now.timestamp() - NOW
        while self._recent and self._recent[0][0] < cut:
            self._recent.popleft()
        moved = sum(b for _, r, b, _ in self._recent if r in rounds)
        files = sum(f for _, r, _, f in self._recent if r in rounds)
        return moved / NOW, files / NOW

    def chart(self, rounds: set[int], start: datetime, now: datetime) -> Chart:
        """What these rounds moved from `start` to `now`: per minute, or per hour for a
        window longer than MINUTES_UP_TO."""
        hourly = now - start > MINUTES_UP_TO
        unit = 3600 if hourly else 60
        first = int(start.timestamp() // unit)
        last = int(now.timestamp() // unit)
        totals = {index: [0, 0] for index in range(first, last + 1)}
        for round_id in rounds:
            for minute, (moved, files) in self._minutes.get(round_id, {}).items():
                cell = totals.get(minute * 60 // unit)
                if cell is not None:
                    cell[0] += moved
                    cell[1] += files
        begin, end = start.timestamp(), now.timestamp()
        bars = []
        for index, (moved, files) in sorted(totals.items()):
            # The first bar starts with the run, the last one ends now.
            bar_start = max(index * unit, begin)
            bar_end = min((index + 1) * unit, end)
            bars.append(Bar(bar_start, max(bar_end - bar_start, 0.0), moved, files))
        return Chart("hour" if hourly else "minute", bars)
