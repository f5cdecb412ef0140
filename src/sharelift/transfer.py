"""The migration engine: walk -> rules -> plan -> bounded async workers -> verify -> state.

One `Engine` runs one round of one job. Its shape:

    walk thread ──listings──► folder tasks (≤ 32 at once)
                                 │  rules + plan per folder (state: one query per folder;
                                 │  target: one listing per folder on first contact only)
                                 ├─► folder creator: new folders, 20 to a $batch
                                 └─► file queue (bounded) ──► N upload workers
                                                               read + hash in a thread,
                                                               upload session fragments,
                                                               verify quickXorHash, state

Guarantees (DESIGN.md invariants):
1. The source is opened read-only (with O_NOATIME where the OS allows), never changed.
2. An item is `done` only after Graph returned its id and a quickXorHash equal to the hash of
   the bytes read; the target is written first, then the state store, then the reports.
3. A re-run never uploads an unchanged file again (no Graph request for it at all) and never
   makes duplicates: uploads use conflictBehavior fail or replace, never rename, unless the
   user asked for "rename".
4. An upload session is persisted the moment it exists; it is resumed by the next run, or
   cancelled when abandoned.
5. Memory is bounded: the walk streams, the queues are bounded, one fragment per worker.
7. All waiting on the service goes through the tenant's pacer (inside GraphClient).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import stat
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sharelift.config import check, default
from sharelift.graph.drive import FRAGMENT_UNIT, DriveClient, NewFile
from sharelift.graph.errors import Conflict, GraphError, NotFound
from sharelift.graph.sessions import SessionBatcher
from sharelift.graph.types import DriveItem, FileSystemInfo, UploadSession
from sharelift.plan import Action, Planned, RemoteItem, plan_folder, target_is_newer
from sharelift.progress import Tally
from sharelift.quickxorhash import QuickXorHash
from sharelift.source.rules import TargetPrefix, decide_siblings
from sharelift.source.walk import Listing, ScanOptions, walk_listings
from sharelift.state import JobRecord, StateStore
from sharelift.target import ResolvedTarget

MIB = 1024 * 1024
_EMPTY_HASH = QuickXorHash().b64digest()


@dataclass(frozen=True)
class EngineConfig:
    """How a round runs.

    Memory: fragment buffers of at most `2 * workers * chunk_size` bytes (a worker sending a
    large file holds the fragment in flight and reads the next; 2 x 16 x 10 MiB = 320 MiB at
    the defaults when all sixteen send large files; a worker meeting only small files keeps
    buffers of their size) plus `4 * workers` queued file descriptions (each new small one with an
    upload session opened ahead) and the walk's current folders.
    """

    chunk_size: int = default("chunk_size")
    workers: int = default("workers")
    policy: str = default("on_conflict")
    mirror: bool = default("mirror")
    verify_target: bool = default("verify_target")
    attempts: int = 3
    """Tries per file for a hash mismatch or a file that changes while it is read."""
    folder_tasks: int = 32

    def __post_init__(self) -> None:
        check(chunk_size=self.chunk_size, workers=self.workers, on_conflict=self.policy)


@dataclass
class RoundResult:
    round_id: int
    status: str
    uploaded: int = 0
    adopted: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    deleted: int = 0
    bytes_uploaded: int = 0


class SourceChanged(Exception):
    """The file changed while it was read; the upload is not a faithful copy."""


@dataclass
class _Folder:
    """A source folder on its way to the target: its id once it exists there."""

    target_relpath: str
    ready: asyncio.Future[str | None]
    """The folder's driveItem id; None when it could not be created."""
    listed: bool = False
    """True when its children at the target must be listed before planning (first contact)."""


@dataclass(eq=False)
class _Upload:
    plan: Planned
    row: int
    folder: _Folder
    source: str
    own_file_gone: bool = False
    """The file a previous round uploaded for this item is no longer at the target."""
    ahead: asyncio.Task[tuple[NewFile, str] | None] | None = None
    """An upload session opened while the file waited in the queue (a new small file), with
    the NewFile it was made for; already saved in the state store."""


@dataclass
class _Counters:
    uploaded: int = 0
    adopted: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    deleted: int = 0
    bytes_uploaded: int = 0
    failed_folders: set[bytes] = field(default_factory=set)


def _finished(
    tasks: set[asyncio.Task[None]], slots: asyncio.Semaphore, task: asyncio.Task[None]
) -> None:
    tasks.discard(task)
    slots.release()


def _open_readonly(path: str) -> int:
    """Open for reading without touching atime where the OS lets us (invariant 1).

    O_NONBLOCK: a file replaced by a FIFO since the walk must not wait for a writer (it would
    hold the event loop); it has no effect on reading regular files.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            return os.open(path, flags | noatime)
        except PermissionError:
            pass  # O_NOATIME needs the file's owner (or CAP_FOWNER): fall back
    return os.open(path, flags)


class FragmentBuffer:
    """One upload worker's fragment buffer, reused for every fragment it sends, so a large
    file costs no allocation per fragment (and the allocator keeps no freed 10 MiB blocks
    around per thread: 8 workers x 10 MiB fragments peaked at 558 MiB RSS with a fresh
    `bytes` per read, against ~80 MiB of buffers). It grows to the largest fragment asked
    for, at most `size`: a worker that only meets small files keeps a small buffer."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buffer = bytearray()

    def view(self, length: int) -> memoryview:
        """The first `length` bytes of the buffer (`length` <= size)."""
        if length > len(self._buffer):
            # Grow in one step to the next power of two (or the fragment size): a worker
            # sees a few sizes, not one allocation per new largest file.
            self._buffer = bytearray(min(self.size, max(length, 1 << (length - 1).bit_length())))
        return memoryview(self._buffer)[:length]


def _read_into(fd: int, offset: int, view: memoryview, hasher: QuickXorHash | None) -> None:
    """Fill `view` from `offset` (hashing the bytes); raises SourceChanged on a short read."""
    got = 0
    length = view.nbytes
    while got < length:
        n = os.preadv(fd, [view[got:]], offset + got)
        if n <= 0:
            raise SourceChanged("the file became shorter while it was read")
        got += n
    if hasher is not None:
        hasher.update(view)


class _ReadAhead:
    """Reads one file's fragments in order, the next while the current one is sent.

    Two buffers take turns: `read()` returns the fragment (read now, or already read by the
    prefetch the caller started after the previous one) and `prefetch()` starts reading the
    next one in a thread into the other buffer, which the previous fragment's upload no
    longer needs. A source share that reads at about the speed the service takes bytes thus
    keeps both busy. The hasher sees the bytes in file order, as reads are never reordered.
    A prefetch that is not wanted (the upload started over, or stopped) is waited for and
    dropped: `settle()` must run before the file is closed.
    """

    def __init__(self, fd: int, buffers: tuple[FragmentBuffer, FragmentBuffer]) -> None:
        self._fd = fd
        self._buffers = buffers
        self._turn = 0
        self._pending: tuple[int, int, QuickXorHash, memoryview, asyncio.Future[None]] | None
        self._pending = None

    def _next_view(self, length: int) -> memoryview:
        buffer = self._buffers[self._turn]
        self._turn ^= 1
        return buffer.view(length)

    async def read(self, offset: int, length: int, hasher: QuickXorHash) -> memoryview:
        pending, self._pending = self._pending, None
        if pending is not None:
            at, size, pending_hasher, view, future = pending
            if (at, size) == (offset, length) and pending_hasher is hasher:
                await future
                return view
            await _settle(future)
        view = self._next_view(length)
        await asyncio.to_thread(_read_into, self._fd, offset, view, hasher)
        return view

    def prefetch(self, offset: int, length: int, hasher: QuickXorHash) -> None:
        view = self._next_view(length)
        future = asyncio.get_running_loop().run_in_executor(
            None, _read_into, self._fd, offset, view, hasher
        )
        self._pending = (offset, length, hasher, view, future)

    async def settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await _settle(pending[4])


async def _settle(future: asyncio.Future[None]) -> None:
    """Wait until a read in a thread has ended (it cannot be interrupted, and its file must
    stay open until then), even through a cancellation, which is passed on afterwards; what
    the read raised is dropped."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            cancelled = True
    if not future.cancelled():
        future.exception()
    if cancelled:
        raise asyncio.CancelledError


async def _wait_all(tasks: list[asyncio.Task[None]], *, on_cancel: Callable[[], None]) -> None:
    """Wait until every task has ended. A cancellation of the caller meanwhile calls
    `on_cancel`, cancels the tasks and still waits for them (the caller passes it on)."""
    pending = [t for t in tasks if not t.done()]
    while pending:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            on_cancel()
            for task in pending:
                task.cancel()
        pending = [t for t in pending if not t.done()]
    for task in tasks:  # retrieved here; the caller looks at those it cares about
        if not task.cancelled():
            task.exception()


def _hash_range(fd: int, length: int, hasher: QuickXorHash, buffer: FragmentBuffer) -> None:
    offset = 0
    while offset < length:
        view = buffer.view(min(buffer.size, length - offset))
        _read_into(fd, offset, view, hasher)
        offset += view.nbytes


def _changed(fd: int, before: os.stat_result) -> bool:
    """True when the open file's size or modification time moved since `before`."""
    after = os.fstat(fd)
    return (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns)


def _ns(seconds: float) -> int:
    """Nanoseconds as the walk sees them (from its float seconds), so that the state's
    mtime compares equal on the next walk."""
    return int(seconds * 1_000_000_000)


def _times(mtime: float, ctime: float, birth: float | None) -> tuple[datetime, datetime]:
    modified = datetime.fromtimestamp(mtime, UTC)
    created = datetime.fromtimestamp(birth if birth is not None else min(ctime, mtime), UTC)
    return created, modified


def _remote(item: DriveItem) -> RemoteItem:
    fsi = item.file_system_info
    return RemoteItem(
        id=item.id,
        name=item.name or "",
        is_folder=item.is_folder,
        size=item.size or 0,
        quick_xor=item.quick_xor_hash,
        modified=(fsi.last_modified if fsi is not None else None) or item.last_modified,
        etag=item.etag,
    )


class Engine:
    """One round of one job. Create, then `await run()`; `request_stop()` ends it early."""

    def __init__(
        self,
        *,
        drive: DriveClient,
        store: StateStore,
        job: JobRecord,
        source: str,
        target: ResolvedTarget,
        options: ScanOptions,
        config: EngineConfig,
        tally: Tally | None = None,
    ) -> None:
        self.drive = drive
        self.store = store
        self.job = job
        self.source = os.path.abspath(source)
        self.target = target
        self.options = options
        self.config = config
        self.tally = tally or Tally()
        self.stopping = asyncio.Event()
        self._counts = _Counters()
        self._files: asyncio.Queue[_Upload | None] = asyncio.Queue(maxsize=4 * config.workers)
        self._folders: dict[tuple[str, ...], asyncio.Future[_Folder | None]] = {}
        """Folders the walk will list, resolved by their parent's planning (None: not
        migrated). An entry lives from the parent's listing to its own: the walk's frontier."""
        self._new_folders: asyncio.Queue[tuple[str, _Folder] | None] = asyncio.Queue()
        self._round_id = 0
        self._root_id = target.folder_id
        self._resumed_at: dict[int, int] = {}
        """Where a resumed session continues, by item row."""
        # Sessions opened ahead wait up to 0.1 s for company: the queue holds enough files
        # that a worker rarely reaches one before its session exists.
        self._sessions = SessionBatcher(drive, linger=0.1)
        self._ahead: set[_Upload] = set()
        """Uploads with a session opened ahead that no worker has taken up yet."""
        self._stop_now = False
        """Set by a second stop signal: tasks are cancelled and clean up without requests."""

    def request_stop(self) -> None:
        """Stop taking new work; uploads in flight finish their current fragment and stop,
        their sessions kept for the next run to resume."""
        self.stopping.set()

    # --- the round -------------------------------------------------------------------------

    async def run(self) -> RoundResult:
        rnd = self.store.start_round(self.job.id)
        self._round_id = rnd.id
        status = "failed"
        try:
            if self.config.verify_target:
                self.tally.phase = "verifying target"
                await self._verify_target()
            await self._ensure_root()
            self.tally.phase = "migrating"
            walk_ok = await self._walk_and_transfer()
            if self.stopping.is_set():
                status = "interrupted"
            else:
                await self._cancel_stale_sessions()
                if self.config.mirror and walk_ok:
                    self.tally.phase = "mirroring deletions"
                    await self._mirror_deletions()
                status = "completed"
        except asyncio.CancelledError:
            status = "interrupted"
            raise
        finally:
            self._save_progress()
            self.store.finish_round(rnd.id, status)
            self.tally.phase = status
        c = self._counts
        return RoundResult(
            round_id=rnd.id,
            status=status,
            uploaded=c.uploaded,
            adopted=c.adopted,
            unchanged=c.unchanged,
            skipped=c.skipped,
            failed=c.failed,
            deleted=c.deleted,
            bytes_uploaded=c.bytes_uploaded,
        )

    def _save_progress(self) -> None:
        t = self.tally
        pacer = self.drive.client.pacer.state()
        self.store.update_round(
            self._round_id,
            files_total=t.files_total,
            bytes_total=max(t.bytes_total, 0),
            files_done=t.files_done,
            bytes_done=max(t.bytes_done, 0),
            files_skipped=t.files_skipped,
            files_failed=t.files_failed,
            throttled=pacer.throttled,
        )

    async def _ensure_root(self) -> None:
        """The target folder exists (created along its path when the user named a new one)."""
        if self._root_id is not None:
            return
        parts = [p for p in self.target.folder.split("/") if p]
        parent = (await self.drive.get_root()).id
        for name in parts:
            parent = (await self.drive.create_folder(parent, name, existing_ok=True)).id
        self._root_id = parent

    # --- walking and planning ----------------------------------------------------------------

    async def _walk_and_transfer(self) -> bool:
        """Walk, plan and upload everything; True when every folder could be read."""
        workers = [asyncio.create_task(self._upload_worker()) for _ in range(self.config.workers)]
        creator = asyncio.create_task(self._folder_creator())
        progress = asyncio.create_task(self._progress_saver())
        listings = walk_listings(self.source, self.options)
        slots = asyncio.Semaphore(self.config.folder_tasks)
        tasks: set[asyncio.Task[None]] = set()
        walk_ok = True
        try:
            root = _Folder("", asyncio.get_running_loop().create_future())
            root.ready.set_result(self._root_id)
            root.listed = self._first_contact_with_root()
            self._expect(()).set_result(root)
            while not self.stopping.is_set():
                listing = await asyncio.to_thread(next, listings, None)
                if listing is None:
                    break
                if listing.problem is not None:
                    walk_ok = False
                await slots.acquire()
                task = asyncio.create_task(self._plan_listing(listing))
                tasks.add(task)
                task.add_done_callback(functools.partial(_finished, tasks, slots))
            self.tally.walk_complete = not self.stopping.is_set()
            if tasks:
                await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            self._stop_now = True
            raise
        finally:
            # A second stop signal cancels this task, here or above: every task of the round
            # is then cancelled, and still ends before the round does, so none writes to the
            # state store after it has closed; none starts a request either (sessions opened
            # ahead stay saved for the next run to resume or cancel). The cancellation is
            # passed on at the end.
            def halt() -> None:
                self._stop_now = True
                for w in workers:
                    w.cancel()
                self._sessions.abort()

            if self._stop_now:
                halt()
            else:
                try:
                    for _ in workers:
                        await self._files.put(None)
                except asyncio.CancelledError:
                    halt()
            await _wait_all(workers, on_cancel=halt)
            self._new_folders.put_nowait(None)
            await _wait_all([creator], on_cancel=halt)
            progress.cancel()
            for task in tasks:
                task.cancel()
            await _wait_all([progress, *tasks], on_cancel=halt)
            try:
                for work in list(self._ahead):  # queued when the walk ended early, never taken
                    await self._drop_ahead(work)
                await self._sessions.aclose()
            except asyncio.CancelledError:
                halt()
                for work in list(self._ahead):
                    await self._drop_ahead(work)
                await self._sessions.aclose()
            if isinstance(listings, Generator):
                listings.close()
        if self._stop_now:
            raise asyncio.CancelledError
        for w in workers:
            if not w.cancelled() and (exc := w.exception()) is not None:
                raise exc
        return walk_ok and not self._counts.failed_folders

    def _first_contact_with_root(self) -> bool:
        # A job that has never completed a round may meet files already at the target.
        return not any(r.status == "completed" for r in self.store.rounds(self.job.id))

    async def _progress_saver(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            pacer = self.drive.client.pacer.state()
            self.tally.concurrency = pacer.concurrency
            self.tally.throttle_events = pacer.throttled
            self.tally.retries = pacer.retries
            if pacer.throttled_for > 0:
                self.tally.throttled_until = asyncio.get_running_loop().time() + pacer.throttled_for
            self._save_progress()

    def _prefix(self) -> TargetPrefix:
        return TargetPrefix(self.target.library_path, at_library_root=not self.target.folder)

    def _expect(self, parts: tuple[str, ...]) -> asyncio.Future[_Folder | None]:
        fut = self._folders.get(parts)
        if fut is None:
            fut = self._folders[parts] = asyncio.get_running_loop().create_future()
        return fut

    async def _plan_listing(self, listing: Listing) -> None:
        folder = await self._expect(listing.parts)
        del self._folders[listing.parts]
        parent_path = os.fsencode("/".join(listing.parts))
        if folder is None:  # the folder itself is not migrated: neither is anything in it
            failed = parent_path in self._counts.failed_folders
            self._close_children(
                listing,
                "failed" if failed else "skipped",
                "PARENT_NOT_MIGRATED",
                "a folder above it could not be created"
                if failed
                else "a folder above it is not migrated",
            )
            return
        if listing.problem is not None:
            self._fail_folder(parent_path, listing.problem.value, listing.detail or "")
            return
        folder_id = await folder.ready
        if folder_id is None:
            self._counts.failed_folders.add(parent_path)
            self._close_children(
                listing, "failed", "PARENT_NOT_MIGRATED", "its folder could not be created"
            )
            return
        prefix = self._prefix()
        base = f"{prefix.path}/{folder.target_relpath}" if folder.target_relpath else prefix.path
        decisions = decide_siblings(
            listing.children,
            self.options.rename,
            parent_path_length=len(base.rstrip("/")),
            at_library_root=prefix.at_library_root and not listing.parts,
        )
        state = self.store.children(self.job.id, parent_path)
        remote: dict[str, RemoteItem] | None = None
        if folder.listed:
            remote = {}
            async for there in self.drive.list_children(folder_id):
                if there.name:
                    remote[there.name.lower()] = _remote(there)
        plans = plan_folder(
            listing, decisions, folder.target_relpath, state, remote, self.config.policy
        )
        loop = asyncio.get_running_loop()
        seen: list[int] = []
        for plan in plans:
            item = plan.item
            if plan.action is Action.SKIP_UNCHANGED:
                assert plan.state is not None
                seen.append(plan.state.id)
                self._counts.unchanged += 1
                self.tally.found(1, item.size)
                self.tally.finished(item.relpath, "skipped", item.size, "unchanged")
                continue
            if plan.action is Action.FOLDER_KNOWN:
                known = plan.state.item_id if plan.state and plan.state.item_id else None
                known = plan.remote.id if plan.remote is not None else known
                child = _Folder(plan.target_relpath or "", loop.create_future())
                child.ready.set_result(known)
                child.listed = folder.listed or (plan.state is None or plan.state.status != "done")
                self._expect(item.parts).set_result(child)
                if plan.state is not None and plan.state.status == "done":
                    seen.append(plan.state.id)  # nothing changed: no write but "seen"
                elif known is not None:
                    self.store.record_done(
                        self._row(plan, "pending"),
                        round_id=self._round_id,
                        item_id=known,
                        etag=None,
                        quick_xor=None,
                        size=None,
                        mtime_ns=None,
                    )
                continue
            if plan.action is Action.CREATE_FOLDER:
                child = _Folder(plan.target_relpath or "", loop.create_future())
                self._expect(item.parts).set_result(child)
                row = self._row(plan, "pending")
                child.ready.add_done_callback(functools.partial(self._folder_done, row, plan))
                await self._new_folders.put((plan.target_relpath or "", child))
                continue
            if plan.action in (Action.UPLOAD, Action.ADOPT_IF_SAME):
                self.tally.found(1, item.size)
                row = self._row(plan, "pending")
                work = _Upload(plan, row, folder, os.path.join(self.source, *item.parts))
                await self._files.put(work)
                # No await since the put: no worker can have taken it up yet.
                self._open_ahead(work)
                continue
            self._record_not_migrated(plan)
            if item.is_dir and item.filtered is None and item.problem is None:
                self._expect(item.parts).set_result(None)  # the walk will still list it
        if seen and len(seen) == len(state):
            # Every item known in this folder is still there, unchanged (a re-run's usual case).
            self.store.mark_folder_seen(self.job.id, parent_path, self._round_id)
        elif seen:
            self.store.mark_seen(seen, self._round_id)

    def _row(self, plan: Planned, status: str) -> int:
        item = plan.item
        return self.store.upsert_item(
            self.job.id,
            plan.path,
            "folder" if item.is_dir else "file",
            status=status if plan.state is None or plan.state.status != "done" else "done",
            round_id=self._round_id,
            target_path=plan.target_relpath,
            size=None if item.is_dir else item.size,
            mtime_ns=None if item.is_dir else plan.mtime_ns,
        )

    def _record_not_migrated(self, plan: Planned) -> None:
        status = {
            Action.BLOCK: "blocked",
            Action.SKIP_RULE: "skipped",
            Action.SKIP_FILTERED: "skipped",
            Action.SKIP_TARGET_NEWER: "skipped",
            Action.FAIL_SOURCE: "failed",
        }[plan.action]
        if plan.item.is_dir and status != "skipped":
            self._counts.failed_folders.add(plan.path)
        row = self.store.upsert_item(
            self.job.id,
            plan.path,
            "folder" if plan.item.is_dir else "file",
            status="pending",
            round_id=self._round_id,
            target_path=plan.target_relpath,
            size=None if plan.item.is_dir else plan.item.size,
            mtime_ns=None if plan.item.is_dir else plan.mtime_ns,
        )
        self.store.record_outcome(
            row,
            round_id=self._round_id,
            status=status,
            code=plan.code or "",
            message=plan.message or "",
        )
        if status == "failed":
            self._counts.failed += 1
        else:
            self._counts.skipped += 1
        if not plan.item.is_dir:
            self.tally.finished(plan.item.relpath, status, 0, plan.code or "")

    def _close_children(self, listing: Listing, status: str, code: str, message: str) -> None:
        """Record every child of a folder that cannot take them; the walk still lists its
        subfolders, so each gets its answer (None: not migrated) and none waits forever."""
        for item in listing.children:
            if item.is_dir and item.filtered is None and item.problem is None:
                self._expect(item.parts).set_result(None)
            row = self.store.upsert_item(
                self.job.id,
                os.fsencode(item.relpath),
                "folder" if item.is_dir else "file",
                status="pending",
                round_id=self._round_id,
            )
            self.store.record_outcome(
                row, round_id=self._round_id, status=status, code=code, message=message
            )
            if status == "failed":
                self._counts.failed += 1
                if item.is_dir:
                    self._counts.failed_folders.add(os.fsencode(item.relpath))
            else:
                self._counts.skipped += 1

    def _fail_folder(self, path: bytes, code: str, message: str) -> None:
        self._counts.failed_folders.add(path)
        row = self.store.item(self.job.id, path)
        if row is not None:
            self.store.record_outcome(
                row.id, round_id=self._round_id, status="failed", code=code, message=message
            )

    def _folder_done(self, row: int, plan: Planned, ready: asyncio.Future[str | None]) -> None:
        folder_id = ready.result()
        if folder_id is not None:
            self.store.record_done(
                row,
                round_id=self._round_id,
                item_id=folder_id,
                etag=None,
                quick_xor=None,
                size=None,
                mtime_ns=None,
                note_code=plan.code,
                note=plan.message,
            )
            self.tally.folders_done += 1

    # --- folders -----------------------------------------------------------------------------

    async def _folder_creator(self) -> None:
        """Create folders 20 to a $batch, all addressed below the job's target folder."""
        assert self._root_id is not None
        done = False
        while not done:
            first = await self._new_folders.get()
            if first is None:
                return
            group = [first]
            # Siblings are queued together; take what is there without waiting long.
            await asyncio.sleep(0.002)
            while len(group) < 20:
                try:
                    nxt = self._new_folders.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is None:
                    done = True
                    break
                group.append(nxt)
            try:
                results = await self.drive.create_folders(
                    [path for path, _ in group], under=self._root_id, existing_ok=True
                )
            except GraphError as exc:
                results = [exc] * len(group)
            for (path, folder), result in zip(group, results, strict=True):
                if isinstance(result, DriveItem):
                    # A folder that already had children at the target is met for the first
                    # time: list it before planning what goes in.
                    folder.listed = bool(result.folder_child_count)
                    folder.ready.set_result(result.id)
                else:
                    row = self.store.item(self.job.id, os.fsencode(path))
                    if row is not None:
                        self.store.record_outcome(
                            row.id,
                            round_id=self._round_id,
                            status="failed",
                            code=getattr(result, "code", "") or "folder_failed",
                            message=str(result),
                        )
                    self._counts.failed += 1
                    folder.ready.set_result(None)

    # --- files -------------------------------------------------------------------------------

    async def _upload_worker(self) -> None:
        buffers = (FragmentBuffer(self.config.chunk_size), FragmentBuffer(self.config.chunk_size))
        while True:
            work = await self._files.get()
            if work is None:
                return
            try:
                if self.stopping.is_set():
                    continue  # left pending: the next run picks it up
                await self._transfer(work, buffers)
            finally:
                if work.ahead is not None:  # not used (failed, skipped, stopped): cancel it
                    await self._drop_ahead(work)

    def _open_ahead(self, work: _Upload) -> None:
        """Start opening the upload session of a new small file while it waits in the queue,
        so that its worker only sends the one fragment: the sessions go 20 to a $batch."""
        plan = work.plan
        if not (
            plan.action is Action.UPLOAD
            and plan.state is None  # never seen: no session of an earlier run to resume
            and 0 < plan.item.size <= self.config.chunk_size
        ):
            return
        work.ahead = asyncio.create_task(self._session_ahead(work))
        self._ahead.add(work)

    async def _session_ahead(self, work: _Upload) -> tuple[NewFile, str] | None:
        parent_id = await work.folder.ready
        if parent_id is None:
            return None
        st = await asyncio.to_thread(os.stat, work.source)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None
        new = self._new_file(work, st, parent_id, work.plan.conflict)
        session = await self._sessions.open(new)
        assert session.upload_url is not None
        expires = session.expiration.isoformat() if session.expiration else None
        # Saved the moment it exists (invariant 4), before anything else can happen.
        self.store.save_upload_session(
            work.row, session.upload_url, expires, st.st_size, st.st_mtime_ns
        )
        return new, session.upload_url

    async def _take_ahead(self, work: _Upload, new: NewFile) -> str | None:
        """The session opened ahead for `work` when it was made for exactly `new` (same
        parent, name, size, times, conflict behaviour); else None, the session cancelled."""
        task, work.ahead = work.ahead, None
        if task is None:
            return None
        self._ahead.discard(work)
        try:
            opened = await task
        except Exception:  # the usual way below meets the same error where it is handled
            return None
        if opened is None:
            return None
        made_for, url = opened
        if made_for == new:
            return url
        with contextlib.suppress(GraphError):
            await self.drive.cancel_upload_session(url)
        self.store.drop_upload_session(work.row)
        return None

    async def _drop_ahead(self, work: _Upload) -> None:
        task, work.ahead = work.ahead, None
        if task is None:
            return
        self._ahead.discard(work)
        if self._stop_now:
            # Stopping now: no request. A session already made is saved in the state store,
            # and the next run resumes or cancels it.
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        # Waited for, not cancelled: a session answered at the moment of a cancel would be lost.
        done = await asyncio.gather(task, return_exceptions=True)
        opened = done[0]
        if isinstance(opened, tuple):
            with contextlib.suppress(GraphError):
                await self.drive.cancel_upload_session(opened[1])
            self.store.drop_upload_session(work.row)

    async def _transfer(
        self, work: _Upload, buffers: tuple[FragmentBuffer, FragmentBuffer]
    ) -> None:
        plan = work.plan
        parent_id = await work.folder.ready
        if parent_id is None:
            self._fail(work, "PARENT_NOT_MIGRATED", "its folder could not be created")
            return
        self.store.mark_started(work.row, self._round_id)
        conflict = plan.conflict
        action = plan.action
        remote = plan.remote
        last_code, last_error = "", ""
        for _attempt in range(self.config.attempts):
            try:
                fd = _open_readonly(work.source)
            except OSError as exc:
                self._fail(work, "READ_ERROR", f"cannot open: {exc.strerror}")
                return
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    self._fail(work, "SPECIAL_FILE", "not a regular file")
                    return
                if action is Action.ADOPT_IF_SAME and remote is not None:
                    if await self._same_as_remote(fd, st, remote, buffers[0]):
                        await self._cancel_saved_session(work.row)
                        self._adopt(work, st, remote)
                        return
                    if self.config.policy == "newer" and target_is_newer(remote, plan.item):
                        await self._cancel_saved_session(work.row)
                        self._skip(work, "TARGET_NEWER", "the target has a newer version")
                        return
                item, digest = await self._upload(work, fd, st, parent_id, conflict, buffers)
                if item is None:  # stopped between fragments: resumable next run
                    return
                if _changed(fd, st):
                    raise SourceChanged("the file changed while it was uploaded")
                if item.quick_xor_hash != digest:
                    last_code = "HASH_MISMATCH"
                    last_error = (
                        f"quickXorHash mismatch: target {item.quick_xor_hash}, read {digest}"
                    )
                    conflict, action = "replace", Action.UPLOAD
                    continue
                self._done(work, item, digest, st)
                return
            except SourceChanged as exc:
                last_code, last_error = "SOURCE_CHANGING", str(exc)
                conflict, action = "replace", Action.UPLOAD
                continue
            except Conflict:
                # The name was taken since we looked (or we never listed the folder): look once.
                try:
                    existing = await self.drive.get_item_by_path(
                        plan.target_relpath or "", under=self._root_id
                    )
                except GraphError as exc:
                    self._fail(work, exc.code or "conflict", str(exc))
                    return
                remote = _remote(existing)
                if remote.is_folder:
                    self._fail(work, "TARGET_IS_FOLDER", "a folder of that name exists there")
                    return
                conflict = {"newer": "replace", "overwrite": "replace"}.get(
                    self.config.policy, "rename"
                )
                action = Action.ADOPT_IF_SAME
                continue
            except GraphError as exc:
                self._fail(work, exc.code or type(exc).__name__, str(exc))
                return
            except OSError as exc:
                self._fail(work, "READ_ERROR", f"read failed: {exc.strerror or exc}")
                return
            finally:
                os.close(fd)
        self._fail(work, last_code, f"{last_error} (after {self.config.attempts} attempts)")

    async def _cancel_saved_session(self, row: int) -> None:
        """A session an earlier run left for an item that needs no upload now: cancel it at
        once (invariant 4), so no finished item holds one."""
        saved = self.store.upload_session(row)
        if saved is not None:
            with contextlib.suppress(GraphError):
                await self.drive.cancel_upload_session(saved.upload_url)
            self.store.drop_upload_session(row)

    async def _same_as_remote(
        self, fd: int, st: os.stat_result, remote: RemoteItem, buffer: FragmentBuffer
    ) -> bool:
        if remote.size != st.st_size or remote.quick_xor is None:
            return False
        hasher = QuickXorHash()
        await asyncio.to_thread(_hash_range, fd, st.st_size, hasher, buffer)
        return hasher.b64digest() == remote.quick_xor

    async def _upload(
        self,
        work: _Upload,
        fd: int,
        st: os.stat_result,
        parent_id: str,
        conflict: str,
        buffers: tuple[FragmentBuffer, FragmentBuffer],
    ) -> tuple[DriveItem | None, str]:
        """Send the file; returns the driveItem Graph made (None when stopped) and the hash of
        the bytes read."""
        plan = work.plan
        name = (plan.target_relpath or "").rsplit("/", 1)[-1]
        created, modified = _times(st.st_mtime, st.st_ctime, plan.item.birthtime)
        size = st.st_size
        if size == 0:
            # An upload session cannot carry zero bytes: PUT the empty file, then set its
            # times (an empty extra version costs no quota).
            item = await self.drive.simple_upload(parent_id, name, b"", conflict=conflict)  # type: ignore[arg-type]
            item = await self.drive.update_item(
                item.id, file_system_info=FileSystemInfo(created=created, last_modified=modified)
            )
            return item, _EMPTY_HASH
        hasher = QuickXorHash()
        offset = 0
        new = self._new_file(work, st, parent_id, conflict)
        session_url = await self._take_ahead(work, new)
        if session_url is None:
            session_url = await self._resume(work, fd, st, hasher, buffers[0])
            if session_url is not None:
                offset = self._resumed_at.pop(work.row, 0)
        if session_url is None:
            session = await self._open_session(work, new)
            assert session.upload_url is not None
            session_url = session.upload_url
            expires = session.expiration.isoformat() if session.expiration else None
            self.store.save_upload_session(work.row, session_url, expires, size, st.st_mtime_ns)
        chunk = self.config.chunk_size
        restarted = False
        reader = _ReadAhead(fd, buffers)
        try:
            while True:
                length = min(chunk, size - offset)
                data = await reader.read(offset, length, hasher)
                if offset + length < size:
                    reader.prefetch(offset + length, min(chunk, size - offset - length), hasher)
                elif _changed(fd, st):
                    # The last fragment commits the file: a mix of old and new bytes must not
                    # reach the target (a later run would take it for the newer version).
                    raise SourceChanged("the file changed while it was uploaded")
                try:
                    result = await self.drive.upload_fragment(
                        session_url, data, offset=offset, total=size
                    )
                except NotFound:
                    if offset + length >= size:
                        # A retried last fragment meets a finished session when the answer to
                        # the first try was lost after Graph made the file: look before sending
                        # it all again (under "rename" that would make a second copy).
                        digest = hasher.b64digest()
                        made = await self._find_made(parent_id, new, digest)
                        if made is not None:
                            self.tally.sent(length)
                            self.store.drop_upload_session(work.row)
                            return made, digest
                    # The session expired or vanished: start over once, from byte 0.
                    if restarted:
                        raise
                    restarted = True
                    self.tally.sent(-offset)
                    self.store.drop_upload_session(work.row)
                    hasher = QuickXorHash()
                    offset = 0
                    session = await self._open_session(work, new)
                    assert session.upload_url is not None
                    session_url = session.upload_url
                    self.store.save_upload_session(
                        work.row, session_url, None, size, st.st_mtime_ns
                    )
                    continue
                offset += length
                self.tally.sent(length)
                if result.item is not None:
                    self.store.drop_upload_session(work.row)
                    return result.item, hasher.b64digest()
                if offset >= size:
                    raise SourceChanged("Graph expects more bytes than the file has")
                if self.stopping.is_set():
                    return None, ""  # keep the session: the next run resumes it
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError) and not (
                isinstance(exc, GraphError) and exc.status in (None, 429, 503)
            ):
                # Abandoned: do not leave the session behind (invariant 4).
                with contextlib.suppress(GraphError):
                    await self.drive.cancel_upload_session(session_url)
                self.store.drop_upload_session(work.row)
            raise
        finally:
            await reader.settle()

    @staticmethod
    def _new_file(work: _Upload, st: os.stat_result, parent_id: str, conflict: str) -> NewFile:
        """The file an upload session creates: its name, size and times as read now."""
        plan = work.plan
        name = (plan.target_relpath or "").rsplit("/", 1)[-1]
        created, modified = _times(st.st_mtime, st.st_ctime, plan.item.birthtime)
        return NewFile(parent_id, name, st.st_size, created, modified, conflict)  # type: ignore[arg-type]

    async def _find_made(self, parent_id: str, new: NewFile, digest: str) -> DriveItem | None:
        """The file an upload session for `new` made, when one with its size and hash is
        there: under its name, or under a name Graph's "rename" gives ("name 1.ext")."""
        if new.conflict != "rename":
            try:
                item = await self.drive.get_item_by_path(new.name, under=parent_id)
            except NotFound:
                return None
            return item if (item.size, item.quick_xor_hash) == (new.size, digest) else None
        stem, ext = os.path.splitext(new.name)
        renamed = re.compile(rf"{re.escape(stem)}( \d+)?{re.escape(ext)}", re.IGNORECASE)
        async for item in self.drive.list_children(parent_id):
            if (item.size, item.quick_xor_hash) == (new.size, digest) and renamed.fullmatch(
                item.name or ""
            ):
                return item
        return None

    async def _open_session(self, work: _Upload, new: NewFile) -> UploadSession:
        """A session for `new`. A file this job uploaded before is replaced by its id: under
        --on-conflict rename it may be "report 1.docx", while "report.docx" belongs to someone
        else. When that file is gone from the target, the name is tried with "fail", so that
        whatever holds it now goes through the conflict policy."""
        row = work.plan.state
        if (
            new.conflict == "replace"
            and not work.own_file_gone
            and row is not None
            and row.item_id is not None
            and row.target_path == work.plan.target_relpath
        ):
            try:
                return await self.drive.create_upload_session(replace(new, item_id=row.item_id))
            except NotFound:
                work.own_file_gone = True
                new = replace(new, conflict="fail")
        return await self.drive.create_upload_session(new)

    async def _resume(
        self,
        work: _Upload,
        fd: int,
        st: os.stat_result,
        hasher: QuickXorHash,
        buffer: FragmentBuffer,
    ) -> str | None:
        """Pick up a session a previous run left, when the file is unchanged since."""
        saved = self.store.upload_session(work.row)
        if saved is None:
            return None
        if (saved.size, saved.mtime_ns) != (st.st_size, st.st_mtime_ns):
            with contextlib.suppress(GraphError):
                await self.drive.cancel_upload_session(saved.upload_url)
            self.store.drop_upload_session(work.row)
            return None
        try:
            status = await self.drive.upload_session_status(saved.upload_url)
        except NotFound:
            self.store.drop_upload_session(work.row)
            return None
        offset = status.next_offset
        if offset is None or offset % FRAGMENT_UNIT or offset >= st.st_size:
            with contextlib.suppress(GraphError):
                await self.drive.cancel_upload_session(saved.upload_url)
            self.store.drop_upload_session(work.row)
            return None
        # The hash covers every byte: re-read (not re-send) what the service already has.
        await asyncio.to_thread(_hash_range, fd, offset, hasher, buffer)
        self.tally.sent(offset)
        self._resumed_at[work.row] = offset
        return saved.upload_url

    def _done(self, work: _Upload, item: DriveItem, digest: str, st: os.stat_result) -> None:
        self.store.record_done(
            work.row,
            round_id=self._round_id,
            item_id=item.id,
            etag=item.etag,
            quick_xor=digest,
            size=st.st_size,
            mtime_ns=_ns(st.st_mtime),
            note_code=work.plan.code,
            note=work.plan.message,
        )
        self._counts.uploaded += 1
        self._counts.bytes_uploaded += st.st_size
        self.tally.finished(work.plan.item.relpath, "done", st.st_size)

    def _adopt(self, work: _Upload, st: os.stat_result, remote: RemoteItem) -> None:
        """The target already holds these very bytes: record it, upload nothing."""
        assert remote.quick_xor is not None
        self.store.record_done(
            work.row,
            round_id=self._round_id,
            item_id=remote.id,
            etag=remote.etag,
            quick_xor=remote.quick_xor,
            size=st.st_size,
            mtime_ns=_ns(st.st_mtime),
            note_code=work.plan.code,
            note=work.plan.message,
        )
        self._counts.adopted += 1
        self.tally.sent(st.st_size)
        self.tally.finished(work.plan.item.relpath, "done", st.st_size, "already at target")

    def _skip(self, work: _Upload, code: str, message: str) -> None:
        self.store.record_outcome(
            work.row, round_id=self._round_id, status="skipped", code=code, message=message
        )
        self._counts.skipped += 1
        self.tally.finished(work.plan.item.relpath, "skipped", work.plan.item.size, code)

    def _fail(self, work: _Upload, code: str, message: str) -> None:
        self.store.record_outcome(
            work.row, round_id=self._round_id, status="failed", code=code, message=message
        )
        self._counts.failed += 1
        self.tally.finished(work.plan.item.relpath, "failed", work.plan.item.size, code)

    # --- after the walk ----------------------------------------------------------------------

    async def _cancel_stale_sessions(self) -> None:
        """Sessions a previous run left for files that no longer need them (invariant 4)."""
        for saved in self.store.upload_sessions(self.job.id):
            row = self.store.item_by_row(saved.item_row)
            if row is not None and row.status == "pending" and row.round_id == self._round_id:
                continue  # stopped mid-way this very round: keep for resuming
            with contextlib.suppress(GraphError):
                await self.drive.cancel_upload_session(saved.upload_url)
            self.store.drop_upload_session(saved.item_row)

    def _under_failed_folder(self, path: bytes) -> bool:
        return any(path == f or path.startswith(f + b"/") for f in self._counts.failed_folders)

    async def _mirror_deletions(self) -> None:
        """Items gone from the source go to the target's recycle bin (--mirror only).

        Never under a folder this round could not read: absence there proves nothing.
        """
        gone = [
            item
            for item in self.store.unseen_since(self.job.id, self._round_id)
            if item.item_id and item.status == "done" and not self._under_failed_folder(item.path)
        ]
        # Delete the highest folders only: their contents go with them.
        gone.sort(key=lambda i: i.path)
        deleted_prefixes: list[bytes] = []
        for item in gone:
            if any(item.path.startswith(p + b"/") for p in deleted_prefixes):
                self.store.record_outcome(
                    item.id,
                    round_id=self._round_id,
                    status="deleted",
                    code="MIRRORED",
                    message="deleted at the source; removed with its folder",
                )
                continue
            assert item.item_id is not None
            try:
                await self.drive.delete_item(item.item_id)
            except NotFound:
                pass
            except GraphError as exc:
                self.store.record_outcome(
                    item.id,
                    round_id=self._round_id,
                    status="failed",
                    code=exc.code or "delete",
                    message=f"could not delete at the target: {exc}",
                )
                continue
            if item.kind == "folder":
                deleted_prefixes.append(item.path)
            self.store.record_outcome(
                item.id,
                round_id=self._round_id,
                status="deleted",
                code="MIRRORED",
                message="deleted at the source; moved to the target's recycle bin",
            )
            self._counts.deleted += 1

    async def _verify_target(self) -> None:
        """Reconcile the state with the target through delta: an item deleted or changed there
        is made pending again, so that this round restores the source's version."""
        known = {
            item.item_id: item for item in self.store.items(self.job.id, "done") if item.item_id
        }
        present: set[str] = set()
        async for page in self.drive.delta():
            for entry in page.items:
                if entry.deleted or entry.id not in known:
                    continue
                present.add(entry.id)
                mine = known[entry.id]
                if mine.kind == "file" and entry.quick_xor_hash != mine.quick_xor:
                    self._reset(mine.id, "TARGET_CHANGED", "changed at the target since upload")
        for item_id, item in known.items():
            if item_id not in present and item_id != self._root_id:
                self._reset(item.id, "TARGET_MISSING", "deleted at the target since upload")

    def _reset(self, row: int, code: str, message: str) -> None:
        self.store.record_outcome(
            row, round_id=self._round_id, status="failed", code=code, message=message
        )


def iter_lines(result: RoundResult) -> Iterator[str]:
    """A short human summary of a round."""
    yield (
        f"round {result.status}: {result.uploaded} uploaded, {result.adopted} already there, "
        f"{result.unchanged} unchanged, {result.skipped} skipped, {result.failed} failed"
        + (f", {result.deleted} deleted" if result.deleted else "")
    )
