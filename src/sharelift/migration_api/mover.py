"""The Migration API mover: the round's files to the target as packages imported by SharePoint.

`MigrationApiMover` keeps the `Mover` contract (`engine/mover.py`) the batched, asynchronous
way:

    submit ──► the package being filled (≤ package_files files, ≤ package_bytes bytes; a file
                 │                       that large alone) ──sealed──► bounded queue
                 └─ a file a killed run packaged is attached to that package instead
    packers (a few) ──► PackageRun.send: containers + key recorded, blobs (read, hash,
                        encrypt and upload overlapped, `workers` at once), manifests, the job
    followers       ──► PackageRun.follow: progress until the job ends; PackageRun.settle:
                        every file proved through Graph, its outcome recorded

`submit` waits while the packers are busy, and they wait while `packages_in_flight` packages
are sent and not yet settled (memory stays bounded however slow the service). In `start`, the
packages an earlier run left open are taken up: those the service holds are followed at once;
those not submitted yet wait for the walk, which submits their files again, and are then sent
with the blobs already stored kept. In `finish` the last package is sealed and every job
followed to its end. With `stopping` set nothing new is sent or followed: what is recorded
waits for the next run. Folders stay the round's (created through Graph first), so a
manifest names each file's folder by its id.

The SharePoint REST calls go to the target site's host with an app-only token for it (a
certificate credential: SharePoint refuses secret-based app-only tokens) through the tenant's
one pacer, the Graph client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import pwd
import stat
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sharelift.clouds import Cloud
from sharelift.engine.mover import FileWork, MoverFactory, RoundContext
from sharelift.engine.outcomes import mtime_ns
from sharelift.engine.reader import FragmentBuffer, hash_file, open_readonly
from sharelift.engine.tasks import wait_all
from sharelift.errors import ConfigError
from sharelift.graph.client import GraphClient
from sharelift.graph.errors import GraphError
from sharelift.migration_api import blob
from sharelift.migration_api.crypto import KeyFileError, load_key
from sharelift.migration_api.jobs import MigrationApiError, MigrationService, read_queue
from sharelift.migration_api.package import PackageUser, file_id
from sharelift.migration_api.runs import REFUSED, Kit, PackageRun, Packed
from sharelift.migration_api.site import FolderIds, package_target, rest_endpoint
from sharelift.option_kinds import MIB
from sharelift.plan import Action, target_is_newer
from sharelift.state import PackageFileRecord, PackageStatus

Token = Callable[[Sequence[str]], Awaitable[str]]


@dataclass(frozen=True)
class MigrationApiSettings:
    """How the Migration API mover works (from the `migration_*` options, config.py)."""

    cloud: Cloud
    token: Token
    """An app-only token for the given scopes (a SharePoint host's, here)."""
    key_dir: Path
    """Where package keys are kept (0600) until their jobs end: beside the state store."""
    storage: str | None = None
    """A connection string to the user's own storage account; None: provided containers."""
    use_queue: bool = False
    user_map: Path | None = None
    package_files: int = 250
    package_bytes: int = 250 * MIB
    poll_interval: float = 15.0
    packers: int = 3
    """Packages uploading at once."""
    packages_in_flight: int = 64
    """Packages sent and not yet settled, at most (memory: each holds its files' records;
    the service also asks for at most 5,000 jobs queued per site collection)."""

    def __repr__(self) -> str:
        return f"MigrationApiSettings(key_dir={self.key_dir}, own_storage={bool(self.storage)})"


def read_user_map(path: Path) -> dict[str, PackageUser]:
    """A user-mapping CSV (`source,upn`: a source owner's login name, and the UPN that authors
    their files; `*` for everyone else), as users by source name. ConfigError names the row."""
    users: dict[str, PackageUser] = {}
    by_upn: dict[str, PackageUser] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                if not row or row[0].startswith("#") or row[:2] == ["source", "upn"]:
                    continue
                if len(row) != 2 or "@" not in row[1]:
                    raise ConfigError(f"{path}, row {number}: expected source,upn")
                upn = row[1].strip().lower()
                user = by_upn.setdefault(upn, PackageUser(len(by_upn) + 1, upn))
                users[row[0].strip()] = user
    except OSError as exc:
        raise ConfigError(f"cannot read the user map {path}: {exc.strerror}") from None
    return users


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class MigrationApiMover:
    """Moves files as Migration API packages (see the module docstring)."""

    def __init__(self, context: RoundContext, settings: MigrationApiSettings) -> None:
        self.context = context
        self.settings = settings
        self.outcomes = context.outcomes
        self._sealed: asyncio.Queue[PackageRun | None] = asyncio.Queue(maxsize=1)
        self._in_flight = asyncio.Semaphore(settings.packages_in_flight)
        self._packers: list[asyncio.Task[None]] = []
        self._followers: list[asyncio.Task[None]] = []
        self._intake_done = asyncio.Event()
        self._resumed: dict[int, tuple[PackageRun, PackageFileRecord]] = {}
        self._filling: PackageRun | None = None
        self._filling_bytes = 0
        self._pool = ThreadPoolExecutor(
            max_workers=context.config.workers + 2, thread_name_prefix="sharelift-blob"
        )
        self._rest: GraphClient | None = None
        self._sessions = blob.Sessions(2 * context.config.workers + 4)
        self._kit: Kit | None = None
        self._folders = FolderIds(context.drive)
        self._users = read_user_map(settings.user_map) if settings.user_map else {}
        self._queue_lock = asyncio.Lock()
        self._queue_buffer: dict[str, list[dict[str, str]]] = {}
        self._aborted = False

    @classmethod
    def factory(cls, settings: MigrationApiSettings) -> MoverFactory:
        return lambda context: cls(context, settings)

    # --- the Mover contract ------------------------------------------------------------------

    async def start(self) -> None:
        context, settings = self.context, self.settings
        target, root_item, root_unique = await package_target(context.drive)
        self._folders.remember(root_item, root_unique)
        endpoint = rest_endpoint(settings.cloud, target.site_url)
        scopes = [endpoint.scope]

        async def token() -> str:
            return await settings.token(scopes)

        self._rest = GraphClient(
            token=token,
            base_url=endpoint.origin,
            pacer=context.drive.client.pacer,
            verify=settings.cloud.ca_file,
            timeouts=context.drive.client.timeouts,
        )
        service = MigrationService(self._rest, endpoint.site_path)
        self._kit = kit = Kit(
            context=context,
            target=target,
            service=service,
            pool=self._pool,
            uploads=asyncio.Semaphore(context.config.workers),
            sessions=self._sessions,
            key_dir=settings.key_dir,
            ca_file=settings.cloud.ca_file,
            storage=settings.storage,
            queue_uri=await service.provision_queue() if settings.use_queue else None,
            poll_interval=settings.poll_interval,
        )
        if kit.queue_uri is not None:
            kit.queue_events = self._queue_events
        for record in context.store.migration_packages(context.job.id, open_only=True):
            run = PackageRun(kit, record.package_id, record)
            for f in context.store.package_files(record.id):
                self._resumed[f.item_row] = (run, f)
            self._followers.append(asyncio.create_task(self._resume(run)))
        self._packers = [asyncio.create_task(self._packer()) for _ in range(settings.packers)]

    async def submit(self, work: FileWork) -> None:
        if self._aborted or self.context.stopping.is_set():
            return
        resumed = self._resumed.pop(work.row, None)
        packed = await self._prepare(work)
        if packed is None:
            return
        if resumed is not None:
            run, record = resumed
            assert run.record is not None
            held = run.record.status not in (PackageStatus.PACKING, PackageStatus.SUBMITTING)
            if held or (record.size, record.mtime_ns) == (
                packed.record.size,
                packed.record.mtime_ns,
            ):
                packed.record = record
                run.files[work.row] = packed
                return
            self.context.store.drop_package_files(run.row, [work.row])
        size = packed.record.size
        if size >= self.settings.package_bytes:
            await self._seal(self._new_run({work.row: packed}))  # a large file goes alone
            return
        if self._filling is None:
            self._filling, self._filling_bytes = self._new_run({}), 0
        self._filling.files[work.row] = packed
        self._filling_bytes += size
        if (
            len(self._filling.files) >= self.settings.package_files
            or self._filling_bytes >= self.settings.package_bytes
        ):
            run, self._filling = self._filling, None
            await self._seal(run)

    async def finish(self) -> None:
        cancelled = False

        def stop_now() -> None:
            nonlocal cancelled
            cancelled = True
            self.abort()

        try:
            if not self._aborted:
                if self._filling is not None and not self.context.stopping.is_set():
                    await self._seal(self._filling)
                self._filling = None
                for _ in self._packers:
                    await self._sealed.put(None)
        except asyncio.CancelledError:
            stop_now()
        await wait_all(self._packers, on_cancel=stop_now)
        self._intake_done.set()
        while pending := [t for t in self._followers if not t.done()]:
            await wait_all(pending, on_cancel=stop_now)
        if self._rest is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._rest.aclose()
        self._pool.shutdown(wait=False)
        self._sessions.close()
        if cancelled:
            raise asyncio.CancelledError
        if not self._aborted:
            for task in [*self._packers, *self._followers]:
                if not task.cancelled() and (exc := task.exception()) is not None:
                    raise exc

    async def release_stale(self) -> None:
        """Packages an earlier run left that no file of this round took up: nothing of theirs
        is needed any more; their keys (and own containers) go. Packages the service holds
        were followed to their end by this round already."""
        kit = self._kit
        if kit is None:
            return
        for record in self.context.store.migration_packages(self.context.job.id, open_only=True):
            if record.status in (PackageStatus.PACKING, PackageStatus.SUBMITTING):
                PackageRun(kit, record.package_id, record).close(
                    PackageStatus.FAILED, "no file of the job needs it any more"
                )

    def abort(self) -> None:
        self._aborted = True
        for task in [*self._packers, *self._followers]:
            task.cancel()

    # --- intake ------------------------------------------------------------------------------

    def _new_run(self, files: dict[int, Packed]) -> PackageRun:
        assert self._kit is not None
        run = PackageRun(self._kit, str(uuid.uuid4()), None)
        run.files.update(files)
        return run

    async def _seal(self, run: PackageRun) -> None:
        await self._sealed.put(run)

    async def _prepare(self, work: FileWork) -> Packed | None:
        """The file as a package will carry it, or None when it got its outcome already (its
        folder failed, it cannot be read, the target holds it or is newer)."""
        outcomes, plan, kit = self.outcomes, work.plan, self._kit
        assert kit is not None
        folder_item = await work.folder.ready
        if folder_item is None:
            outcomes.failed(work, "PARENT_NOT_MIGRATED", "its folder could not be created")
            return None
        try:
            fd = open_readonly(work.source)
        except OSError as exc:
            outcomes.failed(work, "READ_ERROR", f"cannot open: {exc.strerror}")
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                outcomes.failed(work, "SPECIAL_FILE", "not a regular file")
                return None
            library_path = "/".join(
                p for p in (self.context.job.folder_path or "", plan.target_relpath or "") if p
            )
            fid = file_id(kit.target.list_id, library_path)
            remote = plan.remote
            if plan.action is Action.ADOPT_IF_SAME and remote is not None:
                digest = await hash_file(fd, st.st_size, FragmentBuffer(1024 * 1024))
                if remote.size == st.st_size and remote.quick_xor == digest:
                    outcomes.adopted(work, remote, st.st_size, st.st_mtime)
                    return None
                policy = self.context.config.policy
                if policy == "newer" and target_is_newer(remote, plan.item):
                    outcomes.skipped(work, "TARGET_NEWER", "the target has a newer version")
                    return None
                # The package replaces the file there: it must carry that file's own id.
                fid = await self._folders.of(remote.id)
            folder_unique = await self._folders.of(folder_item)
        except OSError as exc:
            outcomes.failed(work, "READ_ERROR", f"read failed: {exc.strerror or exc}")
            return None
        except (GraphError, MigrationApiError) as exc:
            outcomes.failed(work, getattr(exc, "code", None) or REFUSED, str(exc))
            return None
        finally:
            os.close(fd)
        outcomes.started(work)
        created = st.st_mtime if plan.item.birthtime is None else plan.item.birthtime
        author = self._users.get(_owner(st.st_uid)) or self._users.get("*")
        record = PackageFileRecord(
            package_row=0,
            item_row=work.row,
            file_id=fid,
            blob=f"{fid}.dat",
            size=st.st_size,
            mtime_ns=mtime_ns(st.st_mtime),
            quick_xor=None,
            md5=None,
            stored=False,
        )
        return Packed(
            work=work,
            record=record,
            url=f"{kit.target.list_url}/{library_path}",
            folder_item=folder_item,
            folder_unique=folder_unique,
            created=datetime.fromtimestamp(min(created, st.st_mtime), UTC),
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
            mtime=st.st_mtime,
            author=author,
        )

    # --- packages ------------------------------------------------------------------------------

    async def _packer(self) -> None:
        while (run := await self._sealed.get()) is not None:
            if self._aborted:
                continue
            await self._in_flight.acquire()
            try:
                sent = await run.send()
            except BaseException:
                self._in_flight.release()
                raise
            if not sent:
                self._in_flight.release()
                continue
            self._followers = [t for t in self._followers if not t.done()]
            self._followers.append(asyncio.create_task(self._see_through(run, counted=True)))

    async def _see_through(self, run: PackageRun, *, counted: bool = False) -> None:
        """Follow a submitted package to its end and settle its files (`counted`: it holds a
        place among the packages in flight)."""
        try:
            try:
                ended = await run.follow()
            except MigrationApiError as exc:
                # The job stays recorded: the next run follows it again.
                for packed in run.files.values():
                    self.outcomes.failed(packed.work, REFUSED, f"cannot follow the import: {exc}")
                return
            if not ended:
                return
            if not counted:  # a resumed package: the walk attaches its files first
                await self._intake_done.wait()
            await run.settle()
        finally:
            if counted:
                self._in_flight.release()

    async def _resume(self, run: PackageRun) -> None:
        """A package an earlier run left open."""
        record = run.record
        assert record is not None
        if record.status in (PackageStatus.SUBMITTED, PackageStatus.ENDED):
            await self._see_through(run)
            return
        await self._intake_done.wait()
        unattached = [
            f.item_row
            for f in self.context.store.package_files(run.row)
            if f.item_row not in run.files
        ]
        if unattached:
            self.context.store.drop_package_files(run.row, unattached)
        if not run.files:
            return  # release_stale closes it after a complete round
        if await run.send():
            await self._see_through(run)

    async def _queue_events(self, job_id: str) -> list[dict[str, str]]:
        """The events the job queue holds for `job_id`. One reader at a time takes every
        waiting message (in a worker thread) and sorts them by job."""
        kit = self._kit
        assert kit is not None and kit.queue_uri is not None
        async with self._queue_lock:
            keys: dict[str, bytes] = {}
            for record in self.context.store.migration_packages(
                self.context.job.id, open_only=True
            ):
                if record.migration_job_id:
                    with contextlib.suppress(KeyFileError):
                        keys[record.migration_job_id.lower()] = load_key(Path(record.key_file))
            for event in await asyncio.to_thread(read_queue, kit.queue_uri, keys, kit.ca_file):
                self._queue_buffer.setdefault(event.get("JobId", "").lower(), []).append(event)
            return self._queue_buffer.pop(job_id.lower(), [])
