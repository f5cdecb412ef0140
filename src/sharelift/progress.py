"""Progress of a run: one tally the engine updates, and renderers that sample it.

The engine never formats anything: it calls cheap methods on `Tally` (counters only). A renderer
samples the tally on its own clock — a rich live display on a terminal, a plain line every few
seconds otherwise, JSON lines with `--json` — so the cost of showing progress does not grow with
the number of files. Byte counts may go back ("rewind") when a fragment is retried, as in
s3transfer's progress callbacks.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Snapshot:
    """The tally at one instant (what renderers and `sharelift status` show)."""

    phase: str
    files_total: int
    bytes_total: int
    files_done: int
    bytes_done: int
    files_skipped: int
    files_failed: int
    folders_done: int
    walk_complete: bool
    elapsed: float
    rate_bps: float
    throttled_for: float
    concurrency: int
    retries: int
    throttle_events: int


@dataclass
class Tally:
    """Counters of one run, updated by the engine from its event loop."""

    phase: str = "starting"
    files_total: int = 0
    bytes_total: int = 0
    files_done: int = 0
    bytes_done: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    folders_done: int = 0
    walk_complete: bool = False
    retries: int = 0
    throttle_events: int = 0
    concurrency: int = 0
    throttled_until: float = 0.0
    started: float = field(default_factory=time.monotonic)
    on_event: Callable[[dict[str, Any]], None] | None = None
    """Called for item-level events (JSON mode); None when nobody listens."""
    _window: list[tuple[float, int]] = field(default_factory=list)

    def found(self, files: int = 0, size: int = 0) -> None:
        self.files_total += files
        self.bytes_total += size

    def sent(self, nbytes: int) -> None:
        """Bytes acknowledged by the service; negative to rewind after a failed fragment."""
        self.bytes_done += nbytes

    def finished(self, path: str, status: str, size: int = 0, detail: str = "") -> None:
        if status == "done":
            self.files_done += 1
        elif status == "skipped":
            self.files_skipped += 1
            self.bytes_total -= size
        else:
            self.files_failed += 1
        if self.on_event is not None:
            self.on_event(
                {"event": "item", "path": path, "status": status, "size": size, "detail": detail}
            )

    def snapshot(self) -> Snapshot:
        now = time.monotonic()
        # Rate over the last ~10 s of samples, so that it follows the present.
        self._window.append((now, self.bytes_done))
        while len(self._window) > 2 and now - self._window[0][0] > 10:
            self._window.pop(0)
        t0, b0 = self._window[0]
        rate = (self.bytes_done - b0) / (now - t0) if now > t0 else 0.0
        return Snapshot(
            phase=self.phase,
            files_total=self.files_total,
            bytes_total=max(self.bytes_total, 0),
            files_done=self.files_done,
            bytes_done=max(self.bytes_done, 0),
            files_skipped=self.files_skipped,
            files_failed=self.files_failed,
            folders_done=self.folders_done,
            walk_complete=self.walk_complete,
            elapsed=now - self.started,
            rate_bps=max(rate, 0.0),
            throttled_for=max(0.0, self.throttled_until - now),
            concurrency=self.concurrency,
            retries=self.retries,
            throttle_events=self.throttle_events,
        )


class Renderer(Protocol):
    def start(self, tally: Tally) -> None: ...
    def stop(self) -> None: ...


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class _Sampler:
    """Calls `tick` every `interval` seconds on a daemon thread until stopped."""

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        self._interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._tick()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class PlainRenderer:
    """A line every `interval` seconds (logs, cron mail, CI)."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 10.0) -> None:
        self._stream = stream or sys.stderr
        self._interval = interval
        self._tally: Tally | None = None
        self._sampler: _Sampler | None = None

    def line(self, s: Snapshot) -> str:
        total = f"/{s.files_total}" if s.walk_complete else f"/{s.files_total}+"
        text = (
            f"[{s.elapsed:7.0f}s] {s.phase}: files {s.files_done}{total} "
            f"({_human(s.bytes_done)} of {_human(s.bytes_total)}, {_human(s.rate_bps)}/s), "
            f"skipped {s.files_skipped}, failed {s.files_failed}"
        )
        if s.throttled_for > 0:
            text += f", throttled for {s.throttled_for:.0f}s"
        return text

    def _tick(self) -> None:
        if self._tally is not None:
            print(self.line(self._tally.snapshot()), file=self._stream, flush=True)

    def start(self, tally: Tally) -> None:
        self._tally = tally
        self._sampler = _Sampler(self._interval, self._tick)
        self._sampler.start()

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        self._tick()


class JsonRenderer:
    """JSON lines on stdout: every item event, and a progress snapshot every `interval` s."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 2.0) -> None:
        self._stream = stream or sys.stdout
        self._interval = interval
        self._lock = threading.Lock()
        self._tally: Tally | None = None
        self._sampler: _Sampler | None = None

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._stream.write(json.dumps(event, ensure_ascii=False) + "\n")
            self._stream.flush()

    def _tick(self) -> None:
        if self._tally is not None:
            self.emit({"event": "progress", **asdict(self._tally.snapshot())})

    def start(self, tally: Tally) -> None:
        self._tally = tally
        tally.on_event = self.emit
        self._sampler = _Sampler(self._interval, self._tick)
        self._sampler.start()

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        self._tick()


class RichRenderer:
    """A live display on a terminal: files, bytes, rate, ETA and the throttling state."""

    def __init__(self, console: Console | None = None) -> None:
        # rich is imported only for a live display: plain, JSON and quiet runs start faster.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=self._console,
            refresh_per_second=4,
        )
        self._files = self._progress.add_task("files", total=None, note="", visible=False)
        self._bytes = self._progress.add_task("migrating", total=None, note="")
        self._tally: Tally | None = None
        self._sampler: _Sampler | None = None

    def _tick(self) -> None:
        if self._tally is None:
            return
        s = self._tally.snapshot()
        note = f"[yellow]throttled {s.throttled_for:.0f}s" if s.throttled_for > 0 else ""
        if s.files_failed:
            note += f" [red]{s.files_failed} failed"
        self._progress.update(
            self._bytes,
            description=s.phase,
            completed=s.bytes_done,
            total=s.bytes_total if s.walk_complete else None,
            note=note.strip(),
        )

    def start(self, tally: Tally) -> None:
        self._tally = tally
        self._progress.start()
        self._sampler = _Sampler(0.25, self._tick)
        self._sampler.start()

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        self._tick()
        self._progress.stop()


def choose_renderer(json_mode: bool, quiet: bool = False) -> Renderer | None:
    """rich on a terminal, plain lines otherwise, JSON lines with --json; None with --quiet."""
    if json_mode:
        return JsonRenderer()
    if quiet:
        return None
    if sys.stderr.isatty():
        return RichRenderer()
    return PlainRenderer()
