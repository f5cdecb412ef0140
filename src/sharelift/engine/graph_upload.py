"""The Graph mover: files to the target through upload sessions, by a pool of workers.

`GraphMover` keeps the `Mover` contract (`engine/mover.py`) the per-file, streaming way:

    submit ──► bounded queue (4 x workers) ──► N workers, each with two fragment buffers:
                 │                               open the file read-only, check it is still
                 └─ a new small file gets its    a regular file, then (the plan says)
                    session opened ahead,        adopt what the target already holds, or send
                    20 to a $batch               it through a session (graph_session.py);
                                                 report the outcome (outcomes.py)

Each file gets up to `EngineConfig.attempts` tries: a hash mismatch or a file that changed
while it was read is sent again in full, replacing what was made; a connection that broke (or
throttling, or a server error) beyond the client's own retries resumes the same session where
the service left it; a name taken since the plan was made is looked up once and goes through
the conflict policy. When the round stops, workers take up no new file and a file in flight
stops after its current fragment, its session kept for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat

from sharelift.engine.adopt import same_file
from sharelift.engine.aside import MovedAsideFiles, ReplaceRefused
from sharelift.engine.enriched import EnrichedFiles
from sharelift.engine.folders import remote_item
from sharelift.engine.graph_session import (
    SessionsAhead,
    SessionSender,
    Upload,
    resumable,
)
from sharelift.engine.mover import FileWork, RoundContext
from sharelift.engine.outcomes import HASH_MISMATCH, PARENT_NOT_CREATED
from sharelift.engine.reader import FragmentBuffer, SourceChanged, open_readonly
from sharelift.engine.tasks import wait_all
from sharelift.engine.versions import try_prune
from sharelift.graph.errors import Conflict, GraphError, QuotaExceeded
from sharelift.plan import Action, RemoteItem, target_is_newer
from sharelift.state import ItemStatus


class GraphMover:
    """Moves files through Graph upload sessions (see the module docstring)."""

    def __init__(self, context: RoundContext) -> None:
        self.context = context
        self.drive = context.drive
        self.outcomes = context.outcomes
        self._queue: asyncio.Queue[Upload | None] = asyncio.Queue(
            maxsize=4 * context.config.workers
        )
        self._workers: list[asyncio.Task[None]] = []
        self._ahead = SessionsAhead(context)
        self._sender = SessionSender(context, self._ahead)
        self._enriched = EnrichedFiles(context)
        self._aside = MovedAsideFiles(context)
        self._aborted = False

    # --- the Mover contract ------------------------------------------------------------------

    async def start(self) -> None:
        # Sessions an earlier run left are resumed file by file, when the plan submits them;
        # files it moved aside are settled before anything is planned.
        await self._aside.repair()
        self._workers = [
            asyncio.create_task(self._worker()) for _ in range(self.context.config.workers)
        ]

    async def submit(self, work: FileWork) -> None:
        upload = Upload(work.plan, work.row, work.folder, work.source)
        await self._queue.put(upload)
        # No await since the put: no worker can have taken it up yet.
        self._ahead.open(upload)

    async def finish(self) -> None:
        cancelled = False

        def stop_now() -> None:
            nonlocal cancelled
            cancelled = True
            self.abort()

        try:
            if not self._aborted:
                for _ in self._workers:
                    await self._queue.put(None)
        except asyncio.CancelledError:
            stop_now()
        await wait_all(self._workers, on_cancel=stop_now)
        try:
            await self._ahead.aclose()
        except asyncio.CancelledError:
            cancelled = True
        if cancelled:
            raise asyncio.CancelledError
        if not self._aborted:
            for worker in self._workers:
                if not worker.cancelled() and (exc := worker.exception()) is not None:
                    raise exc

    def abort(self) -> None:
        self._aborted = True
        for worker in self._workers:
            worker.cancel()
        self._ahead.abort()

    async def release_stale(self) -> None:
        """Cancel the sessions earlier runs left for files that no longer need them: every
        saved session but those of files this round left unfinished (stopped mid-way, or
        failed in a way the next run resumes from). Remove the older versions a replacement
        left when the run that made it stopped before it could."""
        store, round_id = self.context.store, self.context.round_id
        for marked, item_id in store.prunes_pending(self.context.job.id):
            known = store.item_by_row(marked)
            size = known.stored_size if known is not None else None
            if await try_prune(self.drive, item_id, size):
                store.mark_prune(marked, False)
        for saved in store.upload_sessions(self.context.job.id):
            row = store.item_by_row(saved.item_row)
            if (
                row is not None
                and row.round_id == round_id
                and row.status in (ItemStatus.PENDING, ItemStatus.FAILED)
            ):
                continue
            with contextlib.suppress(GraphError):
                await self.drive.cancel_upload_session(saved.upload_url)
            store.drop_upload_session(saved.item_row)

    # --- workers -----------------------------------------------------------------------------

    async def _worker(self) -> None:
        size = self.context.config.chunk_size
        buffers = (FragmentBuffer(size), FragmentBuffer(size))
        while True:
            upload = await self._queue.get()
            if upload is None:
                return
            try:
                if self.context.stopping.is_set():
                    continue  # left pending: the next run picks it up
                await self._transfer(upload, buffers)
            finally:
                if upload.ahead is not None:  # not used (failed, skipped, stopped): cancel it
                    await self._ahead.drop(upload)

    async def _transfer(
        self, upload: Upload, buffers: tuple[FragmentBuffer, FragmentBuffer]
    ) -> None:
        plan, outcomes = upload.plan, self.outcomes
        parent_id = await upload.folder.ready
        if parent_id is None:
            message = "its folder could not be created at the target"
            await self._fail(upload, PARENT_NOT_CREATED, message)
            return
        outcomes.started(upload)
        conflict, action, remote = plan.conflict, plan.action, plan.remote
        attempts = self.context.config.attempts
        last_code, last_error, resume = "", "", False
        for _attempt in range(attempts):
            try:
                fd = open_readonly(upload.source)
            except OSError as exc:
                await self._fail(upload, "READ_ERROR", f"cannot open: {exc.strerror}")
                return
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):  # it changed since the walk: skipped as then
                    await self._cancel_saved_session(upload.row)
                    outcomes.skipped(upload, "SPECIAL_FILE", "not a regular file (any more)")
                    return
                if action is Action.ADOPT_IF_SAME and remote is not None:
                    if await self._adopt(upload, fd, st, remote, buffers[0]):
                        return
                    policy = self.context.config.policy
                    if policy == "newer" and target_is_newer(remote, plan.item):
                        await self._cancel_saved_session(upload.row)
                        outcomes.skipped(upload, "TARGET_NEWER", "the target has a newer version")
                        return
                prune = self._replacing(upload, conflict, remote)
                if prune:  # marked first, so a run stopped after the upload leaves the work
                    self.context.store.mark_prune(upload.row, True)
                item, digest = await self._sender.send(upload, fd, st, parent_id, conflict, buffers)
                if item is None:  # stopped between fragments: resumable next run
                    return
                # Every byte sent was read, hashed and found unchanged before the request that
                # committed it: the target holds that copy of the file, and the state says so
                # even when the file changes again now (the next run sends the new one).
                mismatch = outcomes.arrived(upload, item, digest, st.st_size, st.st_mtime)
                if not mismatch:
                    await self._settled(upload, item.id, item.size, prune)
                    return
                verdict = await self._enriched.judge(_name(upload), item.id, fd)
                if verdict.verified_by is not None:
                    outcomes.enriched(
                        upload, item, digest, st.st_size, st.st_mtime, verdict.verified_by,
                        verdict.reason,
                    )  # fmt: skip
                    await self._settled(upload, item.id, item.size, prune)
                    return
                reason = f"{mismatch}; {verdict.reason}" if verdict.reason else mismatch
                last_code, last_error, resume = HASH_MISMATCH, reason, False
                conflict, action = "replace", Action.UPLOAD
            except SourceChanged as exc:
                last_code, last_error, resume = "SOURCE_CHANGING", str(exc), False
                conflict, action = "replace", Action.UPLOAD
            except Conflict:
                # The name was taken since we looked (or we never listed the folder): look once.
                try:
                    existing = await self.drive.get_item_by_path(
                        plan.target_relpath or "", under=self.context.root_id
                    )
                except GraphError as exc:
                    await self._fail(upload, exc.code or "conflict", str(exc))
                    return
                remote = remote_item(existing)
                if remote.is_folder:
                    await self._fail(
                        upload, "TARGET_IS_FOLDER", "a folder of that name exists there"
                    )
                    return
                conflict = {"newer": "replace", "overwrite": "replace"}.get(
                    self.context.config.policy, "rename"
                )
                action = Action.ADOPT_IF_SAME
            except ReplaceRefused as exc:
                if self._aside.holds(upload.row):  # refused even as a new file: give up
                    await self._fail(upload, "itemNotFound", str(exc))
                    return
                # The old file goes aside (recorded first), ours arrives as a new one.
                existing = await self.drive.get_item_by_path(
                    plan.target_relpath or "", under=self.context.root_id
                )
                await self._aside.move_aside(
                    upload.row, existing.id, parent_id, existing.name or ""
                )
                upload.own_file_gone = True
                conflict, action = "fail", Action.UPLOAD
                last_code, last_error, resume = "itemNotFound", str(exc), False
            except QuotaExceeded as exc:
                # The drive is full: every other file would meet the same. The round stops as
                # a Ctrl-C stops it; this file stays pending (its session, if any, kept).
                self.context.halt(
                    f"the target drive is full ({exc.code or 'HTTP 507'}): free space there or "
                    "raise its storage limit, then run again; the next run resumes"
                )
                return
            except GraphError as exc:
                if not resumable(exc):
                    await self._fail(upload, exc.code or type(exc).__name__, str(exc))
                    return
                # The session is kept: the next attempt resumes it where the service left it.
                last_code, last_error = exc.code or type(exc).__name__, str(exc)
                resume = True
            except OSError as exc:
                await self._fail(upload, "READ_ERROR", f"read failed: {exc.strerror or exc}")
                return
            finally:
                os.close(fd)
        message = f"{last_error} (after {attempts} attempts)"
        if resume:  # the session stays, for the next run to resume (`release_stale` keeps it)
            await self._aside.failed(upload.row)
            outcomes.failed(upload, last_code, message)
        else:
            await self._fail(upload, last_code, message)

    def _replacing(self, upload: Upload, conflict: str, remote: RemoteItem | None) -> bool:
        """True when this send replaces a file at the target and its older versions are to
        go (`remove_old_versions`)."""
        state = upload.plan.state
        known = remote is not None or (state is not None and state.item_id is not None)
        return self.context.config.remove_old_versions and conflict == "replace" and known

    async def _settled(self, upload: Upload, item_id: str, size: int | None, prune: bool) -> None:
        """The file is done: the old one moved aside for it goes; with `prune`, the versions
        older than the one just written go (the mark stays for the next run when that fails)."""
        await self._aside.settled(upload.row)
        if prune and await try_prune(self.drive, item_id, size):
            self.context.store.mark_prune(upload.row, False)

    async def _fail(self, upload: Upload, code: str, message: str) -> None:
        """The file failed for good: a session saved for it (by this round or an earlier one)
        is cancelled at once, so that only files the next run can resume keep one; an old
        file moved aside for it goes back under its name."""
        await self._cancel_saved_session(upload.row)
        await self._aside.failed(upload.row)
        self.outcomes.failed(upload, code, message)

    async def _cancel_saved_session(self, row: int) -> None:
        """A session an earlier run left for an item that needs no upload now: cancel it at
        once (invariant 4), so no finished item holds one."""
        store = self.context.store
        saved = store.upload_session(row)
        if saved is not None:
            with contextlib.suppress(GraphError):
                await self.drive.cancel_upload_session(saved.upload_url)
            store.drop_upload_session(row)

    async def _adopt(
        self,
        upload: Upload,
        fd: int,
        st: os.stat_result,
        remote: RemoteItem,
        buffer: FragmentBuffer,
    ) -> bool:
        """Record the file at the target as this one, nothing sent, when it is
        (`engine/adopt.py`). True when adopted."""
        found = await same_file(self.context, self._enriched, upload.plan, fd, st, remote, buffer)
        if found is None:
            return False
        await self._cancel_saved_session(upload.row)
        self.outcomes.adopted(
            upload,
            found.remote,
            st.st_size,
            st.st_mtime,
            digest=found.digest,
            verified_by=found.verified_by,
        )
        await self._aside.settled(upload.row)
        return True


def _name(upload: Upload) -> str:
    return (upload.plan.target_relpath or "").rsplit("/", 1)[-1]
