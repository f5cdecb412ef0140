"""What a person sees while sharelift works: one round, a bulk run of many jobs, provisioning.

Each view samples snapshots on its own clock (sharelift.progress), never per file:

    RichRenderer    one round on a terminal: a bar that never goes back, files and bytes
                    settled of the counted totals, rate and time left, the files in flight
                    (name, size, percent, as rclone -P lists its transfers), how much an
                    earlier round had done, and throttling with the time left to wait
    PlainRenderer   the same facts as one line every few seconds (logs, cron mail, CI)
    JsonRenderer    JSON lines on stdout: every item, and a progress snapshot every 2 s
    BulkView        `migrate --jobs`: a line per running job with its totals and a total line
                    (rich on a terminal, plain lines otherwise, JSON lines with --json)
    ProvisionView   `provision`: users asked for, ready, failed and pending, and time waited

`choose_renderer` picks rich on a terminal, plain lines otherwise, JSON lines with --json.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any

from sharelift.progress import (
    ItemEvent,
    ProgressEvent,
    Renderer,
    Snapshot,
    Tally,
    human_bytes,
    human_duration,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from sharelift.provision import ProvisionProgress


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


# --- the facts, as text ------------------------------------------------------------------------


def files_text(s: Snapshot) -> str:
    """`1,204/2,873 files` (`2,873+` while the count goes on)."""
    more = "" if s.count_complete else "+"
    return f"{s.files_settled:,}/{s.files_counted:,}{more} files"


def bytes_text(s: Snapshot) -> str:
    """`410.0 MiB/1.2 GiB` (`1.2 GiB+` while the count goes on)."""
    more = "" if s.count_complete else "+"
    return f"{human_bytes(s.bytes_settled)}/{human_bytes(s.bytes_counted)}{more}"


def rate_text(s: Snapshot) -> str:
    return f"{human_bytes(s.rate_bps)}/s"


def eta_text(s: Snapshot) -> str:
    return "ETA " + ("-:--" if s.eta is None else human_duration(s.eta))


def percent_text(s: Snapshot, fraction: float | None) -> str:
    return "  ?%" if fraction is None else f"{fraction * 100:3.0f}%"


def resumed_text(s: Snapshot) -> str:
    """What earlier rounds had done, or "" for a first run."""
    parts = []
    if s.unchanged_files:
        parts.append(
            f"{s.unchanged_files:,} file{'' if s.unchanged_files == 1 else 's'} "
            f"({human_bytes(s.unchanged_bytes)}) already migrated and unchanged"
        )
    if s.resumed_bytes:
        parts.append(f"{human_bytes(s.resumed_bytes)} of unfinished uploads resumed")
    if not parts:
        return ""
    head = f"earlier rounds (last: {s.resumed_from})" if s.resumed_from else "earlier rounds"
    return f"{head}: " + "; ".join(parts)


def throttle_text(s: Snapshot) -> str:
    """Waiting for the service, and for how long, or ""."""
    if s.throttled_for <= 0:
        return ""
    return (
        f"throttled by Microsoft 365: waiting {human_duration(s.throttled_for)} "
        f"({s.throttle_events} throttle signals so far)"
    )


def outcome_text(s: Snapshot) -> str:
    skipped = s.files_skipped - s.unchanged_files
    return (
        f"{s.files_done:,} migrated, {s.unchanged_files:,} unchanged, {skipped:,} skipped, "
        f"{s.files_failed:,} failed"
    )


def plain_line(s: Snapshot) -> str:
    """One line with every fact of a snapshot (PlainRenderer, BulkView without a terminal)."""
    fraction = s.fraction
    pct = f" ({fraction * 100:.0f}%)" if fraction is not None else " (counting)"
    text = (
        f"[{human_duration(s.elapsed):>7}] {s.phase}: {files_text(s)}, {bytes_text(s)}{pct}, "
        f"{rate_text(s)}, {eta_text(s)}; {outcome_text(s)}"
    )
    if s.in_flight:
        text += f"; {len(s.in_flight)} in flight"
    for extra in (resumed_text(s), throttle_text(s)):
        if extra:
            text += f"; {extra}"
    return text


class _HighWater:
    """The bar's position: the largest fraction shown so far, so that it never goes back."""

    def __init__(self) -> None:
        self.shown = 0.0

    def __call__(self, fraction: float | None) -> float | None:
        if fraction is None:
            return None
        self.shown = max(self.shown, fraction)
        return self.shown


# --- one round -------------------------------------------------------------------------------


class PlainRenderer:
    """A line every `interval` seconds (logs, cron mail, CI)."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 10.0) -> None:
        self._stream = stream or sys.stderr
        self._interval = interval
        self._tally: Tally | None = None
        self._sampler: _Sampler | None = None

    def _tick(self) -> None:
        if self._tally is not None:
            print(plain_line(self._tally.snapshot()), file=self._stream, flush=True)

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
        self._unsubscribe: Callable[[], None] | None = None

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._stream.write(json.dumps(event, ensure_ascii=False) + "\n")
            self._stream.flush()

    def _item(self, event: ProgressEvent) -> None:
        if isinstance(event, ItemEvent):
            self.emit(
                {
                    "event": "item",
                    "path": event.path,
                    "status": event.status.value,
                    "size": event.size,
                    "detail": event.detail,
                }
            )

    def _tick(self) -> None:
        if self._tally is not None:
            self.emit({"event": "progress", **asdict(self._tally.snapshot())})

    def start(self, tally: Tally) -> None:
        self._tally = tally
        self._unsubscribe = tally.subscribe(self._item)
        self._sampler = _Sampler(self._interval, self._tick)
        self._sampler.start()

    def stop(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._tick()


def _bar(fraction: float | None, width: int = 28) -> RenderableType:
    from rich.progress_bar import ProgressBar

    if fraction is None:  # still counting: a pulse, not a position that may go back
        return ProgressBar(total=None, width=width, pulse=True)
    return ProgressBar(total=1.0, completed=fraction, width=width)


def _round_line(label: str, s: Snapshot, fraction: float | None) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    # Text, not markup: a line printed above a live display renders it with markup off.
    line = Table.grid(padding=(0, 1))
    line.add_row(
        Text(label, style="bold"),
        _bar(fraction),
        percent_text(s, fraction),
        files_text(s),
        bytes_text(s),
        rate_text(s),
        eta_text(s),
        human_duration(s.elapsed),
    )
    return line


class RichRenderer:
    """A live display of one round on a terminal (see the module docstring)."""

    def __init__(self, console: Console | None = None, refresh_per_second: float = 4) -> None:
        # rich is imported only for a live display: plain, JSON and quiet runs start faster.
        from rich.console import Console

        self._console = console or Console(stderr=True)
        self._refresh = refresh_per_second
        self._tally: Tally | None = None
        self._live: Live | None = None
        self._bar = _HighWater()

    def render(self, s: Snapshot) -> RenderableType:
        """The display for one snapshot."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        lines: list[RenderableType] = [_round_line(s.phase, s, self._bar(s.fraction))]
        for extra, style in ((resumed_text(s), "cyan"), (throttle_text(s), "yellow")):
            if extra:
                lines.append(Text(extra, style=style, no_wrap=True, overflow="ellipsis"))
        if s.in_flight:
            flights = Table.grid(padding=(0, 1))
            flights.add_column(justify="right")
            flights.add_column(justify="right")
            flights.add_column(no_wrap=True, overflow="ellipsis")
            for f in s.in_flight:
                pct = f"{f.sent * 100 // f.size:3d}%" if f.size else "  0%"
                flights.add_row(pct, human_bytes(f.size), f.path)
            lines.append(flights)
        style = "red" if s.files_failed else ""
        lines.append(Text(outcome_text(s), style=style, no_wrap=True))
        return Group(*lines)

    def _current(self) -> RenderableType:
        from rich.text import Text

        if self._tally is None:
            return Text("")
        return self.render(self._tally.snapshot())

    def start(self, tally: Tally) -> None:
        from rich.live import Live

        self._tally = tally
        self._live = Live(
            get_renderable=self._current,
            console=self._console,
            refresh_per_second=self._refresh,
            transient=False,
        )
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()


def choose_renderer(json_mode: bool, quiet: bool = False) -> Renderer | None:
    """rich on a terminal, plain lines otherwise, JSON lines with --json; None with --quiet."""
    if json_mode:
        return JsonRenderer()
    if quiet:
        return None
    if sys.stderr.isatty():
        return RichRenderer()
    return PlainRenderer()


# --- many jobs -------------------------------------------------------------------------------


@dataclass
class _Job:
    name: str
    tally: Tally | None = None
    last: Snapshot | None = None
    status: str = "waiting"


def _total(snapshots: list[Snapshot]) -> Snapshot:
    """The snapshots of several rounds added up (phase "total")."""
    total = Snapshot(
        phase="total", files_total=0, bytes_total=0, files_done=0, bytes_done=0,
        files_skipped=0, files_failed=0, folders_done=0, walk_complete=True, elapsed=0.0,
        rate_bps=0.0, throttled_for=0.0, concurrency=0, retries=0, throttle_events=0,
        count_complete=True,
    )  # fmt: skip
    eta = 0.0
    for s in snapshots:
        for name in (
            "files_done", "bytes_done", "files_skipped", "files_failed", "files_counted",
            "bytes_counted", "files_settled", "bytes_settled", "unchanged_files",
            "unchanged_bytes", "resumed_bytes", "rate_bps",
        ):  # fmt: skip
            setattr(total, name, getattr(total, name) + getattr(s, name))
        total.count_complete = total.count_complete and s.count_complete
        total.elapsed = max(total.elapsed, s.elapsed)
        total.throttled_for = max(total.throttled_for, s.throttled_for)
        total.throttle_events = max(total.throttle_events, s.throttle_events)
        if s.eta is None:
            eta = -1.0
        elif eta >= 0:
            eta = max(eta, s.eta)
    total.eta = None if eta < 0 or not snapshots else eta
    total.count_complete = total.count_complete and bool(snapshots)
    return total


class BulkView:
    """Every running job of a bulk run live, a line each with its totals, and a total line.

    `renderer_for(name)` is the renderer a job's round reports to; `finished(name, status)`
    records how the job ended; `say(line)` prints a message above the display. With `mode`
    "rich" (a terminal), "plain" (a line per running job and a total line every `interval`
    s) or "json" (JSON lines: one `job` object per running job and a `total` every
    `interval` s).
    """

    def __init__(
        self,
        names: list[str],
        mode: str,
        *,
        stream: IO[str] | None = None,
        console: Console | None = None,
        interval: float | None = None,
    ) -> None:
        self._jobs = {name: _Job(name) for name in names}
        self._mode = mode
        self._stream = stream or (sys.stdout if mode == "json" else sys.stderr)
        self._interval = interval or {"rich": 0.25, "plain": 10.0}.get(mode, 2.0)
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._sampler: _Sampler | None = None
        self._live: Live | None = None
        self._bars: dict[str, _HighWater] = {}
        if mode == "rich":
            from rich.console import Console

            self._console = console or Console(stderr=True)

    # --- what the bulk run tells it

    def renderer_for(self, name: str) -> Renderer:
        view = self

        class _JobRenderer:
            def start(self, tally: Tally) -> None:
                with view._lock:
                    job = view._jobs.setdefault(name, _Job(name))
                    job.tally, job.status = tally, "running"
                tally.watched = True

            def stop(self) -> None:
                with view._lock:
                    job = view._jobs[name]
                    if job.tally is not None:
                        job.last = job.tally.snapshot()
                    job.tally = None

        return _JobRenderer()

    def finished(self, name: str, status: str) -> None:
        with self._lock:
            self._jobs.setdefault(name, _Job(name)).status = status

    def say(self, line: str) -> None:
        if self._mode == "json":
            return
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self._stream, flush=True)

    # --- showing it

    def _snapshots(self) -> tuple[list[tuple[_Job, Snapshot]], Snapshot]:
        with self._lock:
            rows: list[tuple[_Job, Snapshot]] = []
            for job in self._jobs.values():
                snap = job.tally.snapshot() if job.tally is not None else job.last
                if snap is not None:
                    rows.append((job, snap))
            waiting = any(job.status == "waiting" for job in self._jobs.values())
        total = _total([s for _, s in rows])
        if waiting:  # jobs not started yet will add to the totals
            total.count_complete, total.eta = False, None
        total.rate_bps = sum(s.rate_bps for job, s in rows if job.status == "running")
        total.elapsed = time.monotonic() - self._started
        return rows, total

    def _counts(self) -> str:
        with self._lock:
            statuses = [j.status for j in self._jobs.values()]
        running = statuses.count("running")
        waiting = statuses.count("waiting")
        ended = len(statuses) - running - waiting
        return f"{len(statuses)} jobs: {running} running, {waiting} waiting, {ended} ended"

    def render(self) -> RenderableType:
        """The display: a line per running job, then the total line."""
        from rich.console import Group
        from rich.text import Text

        rows, total = self._snapshots()
        lines: list[RenderableType] = []
        for job, s in rows:
            if job.status != "running":
                continue
            bar = self._bars.setdefault(job.name, _HighWater())
            lines.append(_round_line(job.name, s, bar(s.fraction)))
            throttled = throttle_text(s)
            if throttled:
                lines.append(Text("  " + throttled, style="yellow", no_wrap=True))
        bar = self._bars.setdefault("", _HighWater())
        lines.append(_round_line("total", total, bar(total.fraction)))
        lines.append(Text(f"{self._counts()}; {outcome_text(total)}", no_wrap=True))
        return Group(*lines)

    def _tick(self) -> None:
        rows, total = self._snapshots()
        if self._mode == "json":
            for job, s in rows:
                if job.status == "running":
                    self._emit({"event": "job", "job": job.name, **asdict(s)})
            self._emit({"event": "total", **asdict(total)})
            return
        lines = [f"{job.name}: {plain_line(s)}" for job, s in rows if job.status == "running"]
        lines.append(f"{self._counts()}; total: {plain_line(total)}")
        with self._lock:
            print("\n".join(lines), file=self._stream, flush=True)

    def _emit(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self._stream.write(json.dumps(doc, ensure_ascii=False) + "\n")
            self._stream.flush()

    def start(self) -> None:
        if self._mode == "rich":
            from rich.live import Live

            self._live = Live(
                get_renderable=self.render,
                console=self._console,
                refresh_per_second=1 / self._interval,
            )
            self._live.start()
            return
        self._sampler = _Sampler(self._interval, self._tick)
        self._sampler.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
        if self._sampler is not None:
            self._sampler.stop()
            self._tick()


def bulk_mode(json_mode: bool, quiet: bool) -> str | None:
    """The BulkView mode for the flags and the terminal, None for no display."""
    if json_mode:
        return "json"
    if quiet:
        return None
    return "rich" if sys.stderr.isatty() else "plain"


# --- provisioning ----------------------------------------------------------------------------


def provision_line(p: ProvisionProgress) -> str:
    """`OneDrives of 12 users: 8 ready, 3 pending, 1 failed; 4 asked for, waited 1:30 of
    10:00`."""
    text = (
        f"OneDrives of {p.users} users: {p.ready} ready, {p.pending} pending, {p.failed} "
        f"failed; {p.requested} asked for"
    )
    if p.requested:
        text += f", waited {human_duration(p.waited)} of {human_duration(p.timeout)}"
    return text


class ProvisionView:
    """What provisioning waits for, sampled from `progress()`: a live line on a terminal, a
    plain line every `interval` seconds otherwise."""

    def __init__(
        self,
        progress: Callable[[], ProvisionProgress],
        *,
        rich: bool,
        stream: IO[str] | None = None,
        console: Console | None = None,
        interval: float | None = None,
    ) -> None:
        self._progress = progress
        self._rich = rich
        self._stream = stream or sys.stderr
        self._console = console
        self._interval = interval or (0.5 if rich else 10.0)
        self._live: Live | None = None
        self._sampler: _Sampler | None = None

    def _render(self) -> RenderableType:
        from rich.text import Text

        return Text(provision_line(self._progress()), no_wrap=True, overflow="ellipsis")

    def _tick(self) -> None:
        print(provision_line(self._progress()), file=self._stream, flush=True)

    def start(self) -> None:
        if self._rich:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                get_renderable=self._render,
                console=self._console or Console(stderr=True),
                refresh_per_second=1 / self._interval,
            )
            self._live.start()
        else:
            self._sampler = _Sampler(self._interval, self._tick)
            self._sampler.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
        if self._sampler is not None:
            self._sampler.stop()
            self._tick()
