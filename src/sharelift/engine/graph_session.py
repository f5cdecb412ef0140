"""One file through one Graph upload session: open, resume, send fragments, start over, cancel.

https://learn.microsoft.com/graph/api/driveitem-createuploadsession describes the protocol: a
session is created for the file (with its name, size, times and conflict behaviour), its bytes
are PUT in fragments that are multiples of 320 KiB, and the last fragment's answer is the item
Graph made, or, for a session opened with `deferCommit`, an explicit commit's. Nothing is
committed unless every byte sent was read and hashed and the file was found unchanged since it
was opened: a file of one fragment is checked before that fragment (which commits it), a larger
one after its last fragment, just before its commit. This module holds the Graph mover's parts
that deal with one session:

- `SessionsAhead`: a new small file gets its session while it waits in the mover's queue, 20
  sessions to a `$batch` (`graph/sessions.py`); a session opened ahead is used only when the file,
  as the worker finds it, is exactly the one it was made for, and is cancelled otherwise.
- `SessionSender.send`: the fragments, each read (and hashed) while the one before is sent;
  a session saved by an earlier run is resumed where the service left it (a deferred one
  holding every byte is committed); an expired session starts over once; a lost answer to the
  last fragment, or to the commit, is recovered without a second copy.

Every session is saved in the state store the moment it exists and dropped when it ends
(DESIGN.md invariant 4). A failure that the next attempt or the next run can resume from (the
connection broke, the service is throttling or failing) keeps the session; any other failure
cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sharelift.engine.aside import ReplaceRefused
from sharelift.engine.mover import FileWork, RoundContext
from sharelift.engine.reader import FragmentBuffer, ReadAhead, SourceChanged, changed, hash_range
from sharelift.graph.drive import FRAGMENT_UNIT, NewFile
from sharelift.graph.errors import (
    GraphError,
    NotFound,
    QuotaExceeded,
    ServerError,
    Throttled,
    TransportError,
)
from sharelift.graph.sessions import SessionBatcher
from sharelift.graph.types import DriveItem, FileSystemInfo, UploadSession
from sharelift.plan import Action
from sharelift.quickxorhash import QuickXorHash

_EMPTY_HASH = QuickXorHash().b64digest()
SESSIONS_IN_FLIGHT = 1
"""$batch requests of sessions opened ahead out at once (20 sessions each)."""


def resumable(exc: BaseException) -> bool:
    """True for a failure after which an upload session is worth keeping: the next attempt,
    or the next run, resumes it. A connection that broke (TransportError: no answer, status
    0), throttling and server errors that outlasted the client's retries, a full drive (507:
    the round stops, and the next run goes on once there is room) and a cancellation (the
    round stops) leave the session as it was. An upload session exists so that "the
    transfer [can] be resumed if a connection is dropped while the upload is in progress"
    (https://learn.microsoft.com/graph/api/driveitem-createuploadsession); the session's
    status tells where to continue."""
    return isinstance(
        exc, asyncio.CancelledError | TransportError | Throttled | ServerError | QuotaExceeded
    )


@dataclass(eq=False)
class Upload(FileWork):
    """A file in the Graph mover's hands."""

    own_file_gone: bool = False
    """The file a previous round uploaded for this item is no longer at the target."""
    ahead: asyncio.Task[tuple[NewFile, str] | None] | None = None
    """An upload session opened while the file waited in the queue (a new small file), with
    the NewFile it was made for; already saved in the state store."""


def file_times(mtime: float, ctime: float, birth: float | None) -> tuple[datetime, datetime]:
    """(created, modified) as the target should show them: the birth time where the source
    keeps one (else the earlier of ctime and mtime), and the modification time."""
    modified = datetime.fromtimestamp(mtime, UTC)
    created = datetime.fromtimestamp(birth if birth is not None else min(ctime, mtime), UTC)
    return created, modified


def new_file(
    work: FileWork, st: os.stat_result, parent_id: str, conflict: str, *, defer_commit: bool = False
) -> NewFile:
    """The file an upload session creates: its name, size and times as read now.

    `defer_commit` for a file of more than one fragment: its session makes the file only when
    asked, after the last fragment, once the source is found unchanged (`deferCommit`). A file
    of one fragment is read whole, hashed and checked before the one request that carries and
    commits it: deferring would add a round trip and no guarantee.
    """
    plan = work.plan
    name = (plan.target_relpath or "").rsplit("/", 1)[-1]
    created, modified = file_times(st.st_mtime, st.st_ctime, plan.item.birthtime)
    return NewFile(
        parent_id,
        name,
        st.st_size,
        created,
        modified,
        conflict,  # type: ignore[arg-type]
        defer_commit=defer_commit,
    )


class SessionsAhead:
    """Upload sessions opened for new small files while they wait in the queue.

    `open(upload)` starts opening one (when the file qualifies); `take(upload, new)` hands it
    to the worker when it was made for exactly `new`; `drop(upload)` cancels one nobody used.
    `abort()` stops at once without a request; `aclose()` cancels what is left and waits.
    """

    def __init__(self, context: RoundContext) -> None:
        self.context = context
        # Sessions opened ahead wait up to 0.1 s for company: the queue holds enough files
        # that a worker rarely reaches one before its session exists. One batch is out at a
        # time: a kill leaves at most its 20 sessions unrecorded (the rest are in the state
        # store, resumed or cancelled by the next run).
        self._sessions = SessionBatcher(context.drive, linger=0.1, in_flight=SESSIONS_IN_FLIGHT)
        self._untaken: set[Upload] = set()
        self._aborted = False

    def open(self, upload: Upload) -> None:
        """Start opening the session of a new small file, so that its worker only sends the
        one fragment: the sessions go 20 to a $batch."""
        plan = upload.plan
        if (
            plan.action is Action.UPLOAD
            and plan.state is None  # never seen: no session of an earlier run to resume
            and 0 < plan.item.size <= self.context.config.chunk_size
        ):
            upload.ahead = asyncio.create_task(self._open(upload))
            self._untaken.add(upload)

    async def _open(self, upload: Upload) -> tuple[NewFile, str] | None:
        parent_id = await upload.folder.ready
        if parent_id is None:
            return None
        st = await asyncio.to_thread(os.stat, upload.source)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return None
        new = new_file(upload, st, parent_id, upload.plan.conflict)

        def record(session: UploadSession) -> None:
            # Saved the moment its batch's answer is read (invariant 4), before any other
            # task runs: only the batch in flight is ever unrecorded.
            assert session.upload_url is not None
            expires = session.expiration.isoformat() if session.expiration else None
            self.context.store.save_upload_session(
                upload.row, session.upload_url, expires, st.st_size, st.st_mtime_ns
            )

        session = await self._sessions.open(new, record)
        assert session.upload_url is not None
        return new, session.upload_url

    async def take(self, upload: Upload, new: NewFile) -> str | None:
        """The session opened ahead for `upload` when it was made for exactly `new` (same
        parent, name, size, times, conflict behaviour); else None, the session cancelled."""
        task, upload.ahead = upload.ahead, None
        if task is None:
            return None
        self._untaken.discard(upload)
        try:
            opened = await task
        except Exception:  # the usual way below meets the same error where it is handled
            return None
        if opened is None:
            return None
        made_for, url = opened
        if made_for == new:
            return url
        await self._cancel(upload, url)
        return None

    async def drop(self, upload: Upload) -> None:
        """Cancel a session opened ahead that will not be used (failed, skipped, stopped)."""
        task, upload.ahead = upload.ahead, None
        if task is None:
            return
        self._untaken.discard(upload)
        if self._aborted:
            # Stopping now: no request. A session already made is saved in the state store,
            # and the next run resumes or cancels it.
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        # Waited for, not cancelled: a session answered at the moment of a cancel would be lost.
        done = await asyncio.gather(task, return_exceptions=True)
        opened = done[0]
        if isinstance(opened, tuple):
            await self._cancel(upload, opened[1])

    async def _cancel(self, upload: Upload, url: str) -> None:
        with contextlib.suppress(GraphError):
            await self.context.drive.cancel_upload_session(url)
        self.context.store.drop_upload_session(upload.row)

    def abort(self) -> None:
        self._aborted = True
        self._sessions.abort()

    async def aclose(self) -> None:
        """Cancel the sessions nobody took up (files queued when the walk ended early) and
        wait for the batches still in flight. A cancellation meanwhile aborts, then still
        waits for the end before it is passed on."""
        try:
            for upload in list(self._untaken):
                await self.drop(upload)
            await self._sessions.aclose()
        except asyncio.CancelledError:
            self.abort()
            for upload in list(self._untaken):
                await self.drop(upload)
            await self._sessions.aclose()
            raise


class SessionSender:
    """Sends one file through an upload session (see the module docstring)."""

    def __init__(self, context: RoundContext, ahead: SessionsAhead) -> None:
        self.context = context
        self.ahead = ahead

    async def send(
        self,
        upload: Upload,
        fd: int,
        st: os.stat_result,
        parent_id: str,
        conflict: str,
        buffers: tuple[FragmentBuffer, FragmentBuffer],
    ) -> tuple[DriveItem | None, str]:
        """Send the file; returns the driveItem Graph made (None when stopped between
        fragments, the session kept) and the hash of the bytes read. Bytes counted as sent
        are taken back when it raises."""
        drive, store, tally = self.context.drive, self.context.store, self.context.outcomes.tally
        if st.st_size == 0:
            # An upload session cannot carry zero bytes: PUT the empty file, then set its
            # times (an empty extra version costs no quota).
            name = (upload.plan.target_relpath or "").rsplit("/", 1)[-1]
            created, modified = file_times(st.st_mtime, st.st_ctime, upload.plan.item.birthtime)
            try:
                item = await drive.simple_upload(parent_id, name, b"", conflict=conflict)  # type: ignore[arg-type]
            except NotFound:
                if conflict == "replace" and await self._name_taken(parent_id, name):
                    raise ReplaceRefused("SharePoint refused to replace the file") from None
                raise
            # Ours from now on: a run killed before the times are set is followed by one
            # that replaces it, rather than one that adopts it with the wrong times.
            store.note_target_item(upload.row, item.id)
            item = await drive.update_item(
                item.id, file_system_info=FileSystemInfo(created=created, last_modified=modified)
            )
            return item, _EMPTY_HASH
        size = st.st_size
        hasher = QuickXorHash()
        chunk = self.context.config.chunk_size
        new = new_file(upload, st, parent_id, conflict, defer_commit=size > chunk)
        offset = 0
        session_url = await self.ahead.take(upload, new)
        if session_url is None:
            resumed = await self._resume(upload, fd, st, hasher, buffers[0])
            if resumed is not None:
                session_url, offset = resumed
        if session_url is None:
            session_url = await self._open_session(upload, new, st)
        counted = offset  # bytes this attempt counted as sent (the resumed ones included)
        path = upload.plan.item.relpath
        tally.resumed(path, offset)
        restarted = False
        reader = ReadAhead(fd, buffers)
        try:
            while True:
                if offset >= size:  # every byte is in a deferred session: commit it
                    item = await self._commit(upload, session_url, new, fd, st, hasher)
                    return item, hasher.b64digest()
                length = min(chunk, size - offset)
                data = await reader.read(offset, length, hasher)
                if offset + length < size:
                    reader.prefetch(offset + length, min(chunk, size - offset - length), hasher)
                elif not new.defer_commit and changed(fd, st):
                    # The last fragment commits the file: a mix of old and new bytes must not
                    # reach the target (a later run would take it for the newer version).
                    raise SourceChanged("the file changed while it was uploaded")
                try:
                    result = await drive.upload_fragment(
                        session_url, data, offset=offset, total=size
                    )
                except NotFound:
                    if offset + length >= size and not new.defer_commit:
                        # A retried last fragment meets a finished session when the answer to
                        # the first try was lost after Graph made the file: look before sending
                        # it all again (under "rename" that would make a second copy).
                        digest = hasher.b64digest()
                        made = await self._find_made(new, digest)
                        if made is not None:
                            tally.sent(length, path)
                            store.drop_upload_session(upload.row)
                            return made, digest
                        if await self._alive(session_url):
                            raise ReplaceRefused("SharePoint refused to replace the file") from None
                    # The session expired or vanished: start over once, from byte 0.
                    if restarted:
                        raise
                    restarted = True
                    tally.sent(-counted, path)
                    counted = 0
                    store.drop_upload_session(upload.row)
                    hasher = QuickXorHash()
                    offset = 0
                    session_url = await self._open_session(upload, new, st)
                    continue
                offset += length
                counted += length
                tally.sent(length, path)
                if result.item is not None:
                    store.drop_upload_session(upload.row)
                    return result.item, hasher.b64digest()
                if offset >= size and not new.defer_commit:
                    raise SourceChanged("Graph expects more bytes than the file has")
                if self.context.stopping.is_set():
                    return None, ""  # keep the session: the next run resumes it
        except BaseException as exc:
            tally.sent(-counted, path)
            if not resumable(exc):
                # Abandoned: do not leave the session behind (invariant 4).
                with contextlib.suppress(GraphError):
                    await drive.cancel_upload_session(session_url)
                store.drop_upload_session(upload.row)
            raise
        finally:
            await reader.settle()

    async def _commit(
        self,
        upload: Upload,
        session_url: str,
        new: NewFile,
        fd: int,
        st: os.stat_result,
        hasher: QuickXorHash,
    ) -> DriveItem:
        """Make the file of a deferred session that holds every byte, once the source is
        found unchanged since it was opened: the check comes as late as it can, after the
        whole transfer (a network share may show another client's change late). A lost answer
        is recovered without a second copy: the file made is looked for first."""
        if changed(fd, st):
            raise SourceChanged("the file changed while it was uploaded")
        drive, store = self.context.drive, self.context.store
        digest = hasher.b64digest()
        for tried in (False, True):
            try:
                item = await drive.commit_upload_session(session_url)
            except (NotFound, TransportError) as exc:
                made = await self._find_made(new, digest)
                if made is None and isinstance(exc, NotFound) and await self._alive(session_url):
                    raise ReplaceRefused("SharePoint refused to replace the file") from None
                if made is None and tried:
                    raise
                if made is None:
                    continue  # the commit did not happen: the session may take it again
                item = made
            store.drop_upload_session(upload.row)
            return item
        raise AssertionError("unreachable")

    async def _alive(self, session_url: str) -> bool:
        """True when the upload session is still open (a 404 from it was then a refusal)."""
        try:
            await self.context.drive.upload_session_status(session_url)
        except NotFound:
            return False
        return True

    async def _name_taken(self, parent_id: str, name: str) -> bool:
        try:
            await self.context.drive.get_item_by_path(name, under=parent_id)
        except NotFound:
            return False
        return True

    async def _find_made(self, new: NewFile, digest: str) -> DriveItem | None:
        """The file an upload session for `new` made, when one with its size and hash is
        there: under its name, or under a name Graph's "rename" gives ("name 1.ext")."""
        drive = self.context.drive
        if new.conflict != "rename":
            try:
                item = await drive.get_item_by_path(new.name, under=new.parent_id)
            except NotFound:
                return None
            return item if (item.size, item.quick_xor_hash) == (new.size, digest) else None
        stem, ext = os.path.splitext(new.name)
        renamed = re.compile(rf"{re.escape(stem)}( \d+)?{re.escape(ext)}", re.IGNORECASE)
        async for item in drive.list_children(new.parent_id):
            if (item.size, item.quick_xor_hash) == (new.size, digest) and renamed.fullmatch(
                item.name or ""
            ):
                return item
        return None

    async def _open_session(self, upload: Upload, new: NewFile, st: os.stat_result) -> str:
        """A new session for `new`, saved in the state store; returns its upload URL."""
        session = await self._create(upload, new)
        assert session.upload_url is not None
        expires = session.expiration.isoformat() if session.expiration else None
        self.context.store.save_upload_session(
            upload.row, session.upload_url, expires, st.st_size, st.st_mtime_ns
        )
        return session.upload_url

    async def _create(self, upload: Upload, new: NewFile) -> UploadSession:
        """A file this job uploaded before is replaced by its id: under --on-conflict rename
        it may be "report 1.docx", while "report.docx" belongs to someone else. When that file
        is gone from the target, the name is tried with "fail", so that whatever holds it now
        goes through the conflict policy."""
        drive = self.context.drive
        row = upload.plan.state
        if (
            new.conflict == "replace"
            and not upload.own_file_gone
            and row is not None
            and row.item_id is not None
            and row.target_path == upload.plan.target_relpath
        ):
            try:
                return await drive.create_upload_session(replace(new, item_id=row.item_id))
            except NotFound:
                upload.own_file_gone = True
                new = replace(new, conflict="fail")
        return await drive.create_upload_session(new)

    async def _resume(
        self,
        upload: Upload,
        fd: int,
        st: os.stat_result,
        hasher: QuickXorHash,
        buffer: FragmentBuffer,
    ) -> tuple[str, int] | None:
        """The saved session of the file and where it continues, when it is still open and
        the file is unchanged since it was made (else it is cancelled and forgotten)."""
        drive, store = self.context.drive, self.context.store
        saved = store.upload_session(upload.row)
        if saved is None:
            return None
        if (saved.size, saved.mtime_ns) != (st.st_size, st.st_mtime_ns):
            with contextlib.suppress(GraphError):
                await drive.cancel_upload_session(saved.upload_url)
            store.drop_upload_session(upload.row)
            return None
        try:
            status = await drive.upload_session_status(saved.upload_url)
        except NotFound:
            store.drop_upload_session(upload.row)
            return None
        # A deferred session that holds every byte names no range left: it waits for its
        # commit (a run stopped just before it).
        offset = st.st_size if not status.next_expected_ranges else status.next_offset
        if offset is None or (offset % FRAGMENT_UNIT and offset != st.st_size):
            with contextlib.suppress(GraphError):
                await drive.cancel_upload_session(saved.upload_url)
            store.drop_upload_session(upload.row)
            return None
        # The hash covers every byte: re-read (not re-send) what the service already has.
        await asyncio.to_thread(hash_range, fd, offset, hasher, buffer)
        return saved.upload_url, offset
