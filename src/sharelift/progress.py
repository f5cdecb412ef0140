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
    PlanEvent(source, target, action, ...)   a dry run's decision for one item

A subscriber that raises is logged and unsubscribed; the round goes on. Counting costs no
allocation per file unless someone subscribed (`Tally.listening`).

What a person sees is drawn from snapshots by the renderers in sharelift.views, each on its own
clock, so the cost of showing progress does not grow with the number of files.

Totals come early: while the round plans and moves, a second walk of SOURCE counts its files and
bytes ahead (`counted`; it streams as the walk does, so memory stays bounded), and a display
shows "settled of counted" — files settled whatever their outcome, bytes of the files settled
plus the bytes sent of the files in flight — which never goes back, however the work is ordered.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sharelift.state import ItemStatus

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


@dataclass(frozen=True, slots=True)
class InFlight:
    """A file being sent: its path relative to SOURCE, its size and the bytes sent so far."""

    path: str
    size: int
    sent: int


@dataclass
class Snapshot:
    """The tally at one instant (what renderers and `sharelift status` show).

    `files_total` / `bytes_total` count what was planned to move or found unchanged (the state
    store's round row keeps them); a display uses `files_counted` / `bytes_counted` (the whole
    tree, counted ahead; final once `count_complete`) against `files_settled` /
    `bytes_settled`, which only grow. `rate_bps` is what is sent per second now; `eta` the
    seconds left at the pace the tree is being settled (None while unknown).
    """

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
    files_counted: int = 0
    bytes_counted: int = 0
    count_complete: bool = False
    files_settled: int = 0
    bytes_settled: int = 0
    unchanged_files: int = 0
    unchanged_bytes: int = 0
    resumed_bytes: int = 0
    """Bytes that upload sessions left by an earlier run already held (not sent again)."""
    resumed_from: str = ""
    """The earlier round this one goes on from ("round 2, interrupted"), or ""."""
    eta: float | None = None
    in_flight: list[InFlight] = field(default_factory=list)

    @property
    def fraction(self) -> float | None:
        """How much of the tree is settled, 0 to 1 (bytes when it has any), None while the
        count goes on."""
        if not self.count_complete:
            return None
        if self.bytes_counted > 0:
            return min(1.0, self.bytes_settled / self.bytes_counted)
        if self.files_counted > 0:
            return min(1.0, self.files_settled / self.files_counted)
        return 1.0


@dataclass(frozen=True, slots=True)
class SnapshotEvent:
    """The round's counters at one instant. `snapshot.bytes_done` may be lower than in the
    previous one: what a failed attempt had sent is counted again when it is sent again."""

    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A line of text for a person: a dry run tells its plan this way."""

    text: str


@dataclass(frozen=True, slots=True)
class PlanEvent:
    """What a dry run would do with one item (every item, unchanged ones included)."""

    source: str
    """Its path relative to SOURCE, `/`-separated."""
    target: str | None
    """Its decoded server-relative path at the target (`/sites/Team/Shared Documents/a.txt`),
    None when it would not be migrated."""
    action: str
    """upload, create_folder, skip_unchanged, folder_known, adopt_if_same, block, skip_rule,
    skip_filtered, skip_parent, fail_source, ... (sharelift.plan.Action)."""
    reason: str
    """Why, when the item is renamed or not migrated: `CODE: message`; "" otherwise."""
    kind: str
    """file or folder."""
    size: int


ProgressEvent = ItemEvent | BytesEvent | PhaseEvent | SnapshotEvent | MessageEvent | PlanEvent
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

    For displays: `counted_files` / `counted_bytes` (the walk that counts ahead; `count_complete`
    once it is done), the files in flight (`begun`, then `sent` with their path) and the item
    sizes of every file settled (`settled_bytes`).
    """

    IN_FLIGHT_SHOWN = 8
    """Files in flight a snapshot lists (the ones furthest along)."""

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
        self.counted_files = 0
        self.counted_bytes = 0
        self.count_complete = False
        self.settled_bytes = 0
        self.unchanged_bytes = 0
        self.resumed_bytes = 0
        self.resumed_from = ""
        self.watched = False
        """A display samples this tally without subscribing (a bulk run's view): the round
        counts its totals ahead for it, as it does for subscribers."""
        self.started = time.monotonic()
        self._subscribers: list[Subscriber] = []
        self._in_flight: dict[str, list[int]] = {}
        self._window: list[tuple[float, int, int]] = [(self.started, 0, 0)]
        self._settled_high = 0

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

    def begun(self, path: str, size: int) -> None:
        """A file of `size` bytes is being sent (it is in flight until `finished`)."""
        self._in_flight[path] = [size, 0]

    def resumed(self, path: str, nbytes: int) -> None:
        """An upload session left by an earlier run already holds `nbytes` of this file."""
        self.resumed_bytes += nbytes
        self.sent(nbytes, path)

    def sent(self, nbytes: int, path: str | None = None) -> None:
        """Bytes acknowledged by the service (of the file at `path`, when known); negative to
        rewind what will be sent again."""
        self.bytes_done += nbytes
        flight = self._in_flight.get(path) if path is not None else None
        if flight is not None:
            flight[1] += nbytes
        if self._subscribers:
            self.publish(BytesEvent(nbytes))

    def unchanged_files(self, count: int, size: int) -> None:
        """`count` unchanged files of `size` bytes in all, counted without an event each
        (for when nobody listens: see `listening`)."""
        self.files_total += count
        self.files_skipped += count
        self.unchanged += count
        self.settled_bytes += size
        self.unchanged_bytes += size

    def finished(
        self,
        path: str,
        outcome: Outcome,
        size: int = 0,
        detail: str = "",
        *,
        folder: bool = False,
        item_size: int | None = None,
    ) -> None:
        """One item is settled. For a file, `size` is what `found` counted for it (0 when it
        was not planned to move): a file that is not moved leaves the byte total. `item_size`
        is the file's size on the source when that differs from `size` (a file not planned to
        move): what displays count as settled."""
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
                self.unchanged_bytes += size
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
        self._in_flight.pop(path, None)
        self.settled_bytes += size if item_size is None else item_size
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
        flights = sorted(
            (InFlight(path, size, max(sent, 0)) for path, (size, sent) in self._in_flight.items()),
            key=lambda f: (-f.sent / f.size if f.size else 0.0, f.path),
        )
        # Settled bytes never go back: a rewound fragment is shown as it was until it is sent
        # again.
        settled = self.settled_bytes + sum(f.sent for f in flights)
        self._settled_high = settled = max(settled, self._settled_high)
        # Rates over the last ~10 s of samples, so that they follow the present.
        self._window.append((now, self.bytes_done, settled))
        while len(self._window) > 2 and now - self._window[0][0] > 10:
            self._window.pop(0)
        t0, sent0, settled0 = self._window[0]
        span = now - t0
        rate = (self.bytes_done - sent0) / span if span > 0 else 0.0
        pace = (settled - settled0) / span if span > 0 else 0.0
        left = max(self.counted_bytes - settled, 0)
        eta: float | None = None
        if self.count_complete and left == 0:
            eta = 0.0
        elif self.count_complete and pace > 0:
            eta = left / pace
        files_settled = self.files_done + self.files_skipped + self.files_failed
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
            # The tree may have grown since it was counted: never fewer than settled.
            files_counted=max(self.counted_files, files_settled),
            bytes_counted=max(self.counted_bytes, settled),
            count_complete=self.count_complete,
            files_settled=files_settled,
            bytes_settled=settled,
            unchanged_files=self.unchanged,
            unchanged_bytes=self.unchanged_bytes,
            resumed_bytes=self.resumed_bytes,
            resumed_from=self.resumed_from,
            eta=eta,
            in_flight=flights[: self.IN_FLIGHT_SHOWN],
        )


class Renderer(Protocol):
    """Shows a round's progress: `start(tally)` when the round starts, `stop()` at its end
    (which shows the final state). The renderers are in sharelift.views."""

    def start(self, tally: Tally) -> None: ...
    def stop(self) -> None: ...


def human_bytes(n: float) -> str:
    """`1536` -> `1.5 KiB` (binary units, as the reports' byte counts are)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_duration(seconds: float) -> str:
    """`3725` -> `1:02:05`, `65` -> `1:05`."""
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def end_line(nbytes: int, seconds: float) -> str:
    """The one line that ends a run: bytes sent, how long it took, how fast."""
    speed = nbytes / seconds if seconds > 0 else 0.0
    return f"sent {human_bytes(nbytes)} in {human_duration(seconds)} ({human_bytes(speed)}/s)"
