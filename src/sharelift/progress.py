"""Progress of a round: one counter object, events for subscribers, and renderers.

`Tally` is the one set of counters of a round. The engine updates it through a few cheap
methods, and everything that reports on a round reads it: the renderers, the state store's
round row (saved every few seconds and at the end) and the round's result. Nothing is
counted twice.

Subscribers: any number of callables may `subscribe` to a tally; each receives every event,
in order, on the thread that runs the round (the engine's event loop), and should return
quickly. Events are small, frozen and typed:

    ItemEvent(path, outcome, size, detail)   a file is settled: uploaded (enriched or
                                             unverified, when a library rewrote it), adopted,
                                             unchanged, skipped, blocked, failed or deleted
                                             (folders do not send item events)
    BytesEvent(delta)                        bytes acknowledged by the service; negative to
                                             "rewind" what a failed attempt had sent, which
                                             will be sent again (as s3transfer's callbacks do)
    PhaseEvent(phase)                        the round entered a phase ("migrating", ...)
    SnapshotEvent(snapshot)                  all the counters at one instant; the library's
                                             `migrate()` sends one every half second and
                                             one at the end (the tally itself never does)
    MessageEvent(text)                       a line for a person (a dry run's plan)

A subscriber that raises is logged and unsubscribed; the round goes on. Counting costs no
allocation per file unless someone subscribed (`Tally.listening`).

Renderers sample the tally on their own clock — a rich live display on a terminal, a plain line
every few seconds otherwise, JSON lines with `--json` (which also subscribes, for one line per
file) — so the cost of showing progress does not grow with the number of files.
"""

from __future__ import annotations

import enum
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

from sharelift.state import ItemStatus

if TYPE_CHECKING:
    from rich.console import Console

log = logging.getLogger("sharelift.progress")


class Outcome(enum.StrEnum):
    """What a round did with one item."""

    UPLOADED = "uploaded"
    """Sent and verified: the target's hash is the hash of the bytes read."""
    ENRICHED = "enriched"
    """Sent and verified; SharePoint added its metadata: the library rewrote the Office file
    as it stored it, and every part of it but that metadata was proved identical."""
    UNVERIFIED = "unverified"
    """Sent whole (the upload took every byte), but SharePoint rewrote the file as it stored
    it and its content was not compared (the proof is off, or none applies)."""
    ADOPTED = "adopted"
    """The target already held the same bytes: recorded, nothing sent."""
    UNCHANGED = "unchanged"
    """Migrated before and unchanged since: nothing to do."""
    CREATED = "created"
    """A folder made at the target."""
    SKIPPED = "skipped"
    BLOCKED = "blocked"
    FAILED = "failed"
    DELETED = "deleted"

    @property
    def status(self) -> ItemStatus:
        """The item's status as a progress display shows it (an unchanged file counts as
        skipped there, although it stays `done` in the state store)."""
        return _STATUS_SHOWN[self]


_STATUS_SHOWN = {
    Outcome.UPLOADED: ItemStatus.DONE,
    Outcome.ENRICHED: ItemStatus.DONE,
    Outcome.UNVERIFIED: ItemStatus.DONE,
    Outcome.ADOPTED: ItemStatus.DONE,
    Outcome.CREATED: ItemStatus.DONE,
    Outcome.UNCHANGED: ItemStatus.SKIPPED,
    Outcome.SKIPPED: ItemStatus.SKIPPED,
    Outcome.BLOCKED: ItemStatus.BLOCKED,
    Outcome.FAILED: ItemStatus.FAILED,
    Outcome.DELETED: ItemStatus.DELETED,
}


@dataclass(frozen=True, slots=True)
class ItemEvent:
    """A file is settled for this round."""

    path: str
    """Its path relative to SOURCE, `/`-separated."""
    outcome: Outcome
    size: int
    """Its size in bytes (0 when it was not read)."""
    detail: str = ""
    """Why: an error or rule code, or a note ("unchanged", "already at target")."""

    @property
    def status(self) -> ItemStatus:
        return self.outcome.status


@dataclass(frozen=True, slots=True)
class BytesEvent:
    """Bytes acknowledged by the service since the last event; negative for a rewind."""

    delta: int


@dataclass(frozen=True, slots=True)
class PhaseEvent:
    """The round entered a phase: "verifying target", "migrating", "mirroring deletions",
    then its final status ("completed", "interrupted", "failed")."""

    phase: str


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


@dataclass(frozen=True, slots=True)
class SnapshotEvent:
    """The round's counters at one instant. `snapshot.bytes_done` may be lower than in the
    previous one: what a failed attempt had sent is counted again when it is sent again."""

    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A line of text for a person: a dry run tells its plan this way."""

    text: str


ProgressEvent = ItemEvent | BytesEvent | PhaseEvent | SnapshotEvent | MessageEvent
Subscriber = Callable[[ProgressEvent], None]


class Tally:
    """The counters of one round, updated from the round's event loop.

    Items, by outcome (files and folders): `uploaded` (of which `enriched` and `unverified`:
    files a library rewrote as it stored them, proved part by part or not compared),
    `adopted`, `unchanged`, `skipped`, `blocked`, `failed`, `deleted`; `bytes_uploaded` of the
    files uploaded. For progress
    (files only): `files_total` (planned to move, or found unchanged) and `bytes_total`,
    `files_done`, `files_skipped` (unchanged, skipped and blocked), `files_failed`, and
    `bytes_done`, which may go back on a rewind; `folders_done` counts the folders made. The
    pacer's state (`concurrency`, `retries`, `throttle_events`, `throttled_until`) is copied in
    by the engine every few seconds.
    """

    def __init__(self, *, phase: str = "starting") -> None:
        self._phase = phase
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self.files_skipped = 0
        self.files_failed = 0
        self.folders_done = 0
        self.uploaded = 0
        self.enriched = 0
        self.unverified = 0
        self.adopted = 0
        self.unchanged = 0
        self.skipped = 0
        self.blocked = 0
        self.failed = 0
        self.deleted = 0
        self.bytes_uploaded = 0
        self.walk_complete = False
        self.retries = 0
        self.throttle_events = 0
        self.concurrency = 0
        self.throttled_until = 0.0
        """`time.monotonic()` until which the tenant's throttle window is open."""
        self.started = time.monotonic()
        self._subscribers: list[Subscriber] = []
        self._window: list[tuple[float, int]] = []

    # --- subscribers -------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Send every event from now on to `subscriber`; returns a function that stops it."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    @property
    def listening(self) -> bool:
        """True when someone subscribed (events are only made then)."""
        return bool(self._subscribers)

    def publish(self, event: ProgressEvent) -> None:
        """Send `event` to every subscriber, in the order they subscribed."""
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("a progress subscriber failed; it is unsubscribed")
                self._subscribers.remove(subscriber)

    # --- counting ----------------------------------------------------------------------------

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, phase: str) -> None:
        self._phase = phase
        if self._subscribers:
            self.publish(PhaseEvent(phase))

    def found(self, files: int, size: int) -> None:
        """`files` files of `size` bytes in all are planned to move."""
        self.files_total += files
        self.bytes_total += size

    def sent(self, nbytes: int) -> None:
        """Bytes acknowledged by the service; negative to rewind what will be sent again."""
        self.bytes_done += nbytes
        if self._subscribers:
            self.publish(BytesEvent(nbytes))

    def unchanged_files(self, count: int, size: int) -> None:
        """`count` unchanged files of `size` bytes in all, counted without an event each
        (for when nobody listens: see `listening`)."""
        self.files_total += count
        self.files_skipped += count
        self.unchanged += count

    def finished(
        self, path: str, outcome: Outcome, size: int = 0, detail: str = "", *, folder: bool = False
    ) -> None:
        """One item is settled. For a file, `size` is what `found` counted for it (0 when it
        was not planned to move): a file that is not moved leaves the byte total."""
        match outcome:
            case Outcome.UPLOADED | Outcome.ENRICHED | Outcome.UNVERIFIED:
                self.uploaded += 1
                self.bytes_uploaded += size
                self.enriched += outcome is Outcome.ENRICHED
                self.unverified += outcome is Outcome.UNVERIFIED
            case Outcome.ADOPTED:
                self.adopted += 1
            case Outcome.UNCHANGED:
                self.unchanged += 1
                self.files_total += 1
                self.bytes_total += size
            case Outcome.CREATED:
                self.folders_done += 1
            case Outcome.SKIPPED:
                self.skipped += 1
            case Outcome.BLOCKED:
                self.blocked += 1
            case Outcome.FAILED:
                self.failed += 1
            case Outcome.DELETED:
                self.deleted += 1
        if folder:
            return
        status = _STATUS_SHOWN[outcome]
        if status is ItemStatus.DONE:
            self.files_done += 1
        elif status is ItemStatus.FAILED:
            self.files_failed += 1
        elif status is not ItemStatus.DELETED:
            self.files_skipped += 1
            self.bytes_total -= size
        if self._subscribers:
            self.publish(ItemEvent(path, outcome, size, detail))

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
    """Shows a round's progress: `start(tally)` when the round starts, `stop()` at its end
    (which shows the final state)."""

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
