"""The Migration API mover: the round's files to the target as packages imported by SharePoint.

`MigrationApiMover` keeps the `Mover` contract (`engine/mover.py`) the batched, asynchronous
way:

    submit ──► Intake.prepare (`intake.py`): the file checked (adopted, skipped or failed at
                 │     once), given its ids, times and author
                 ├─► the package being filled (≤ package_files files, ≤ package_bytes bytes;
                 │   a file that large alone) ──sealed──► bounded queue
                 └─► a file a killed run packaged is attached to that package instead
    packers (a few) ──► PackageSender.send (`sending.py`): containers + key recorded, blobs
                        (read, hash, encrypt and upload overlapped, `workers` at once),
                        manifests, the job
    followers       ──► PackageRun.follow (`runs.py`): progress until the job ends;
                        PackageRun.settle: every file proved through Graph, its outcome recorded

`submit` waits while the packers are busy, and they wait while `packages_in_flight` packages
are sent and not yet settled (memory stays bounded however slow the service). In `start`, the
packages an earlier run left open are taken up: those the service holds are followed at once;
those not submitted yet wait for the walk, which submits their files again, and are then sent
with the blobs already stored kept. In `finish` the last package is sealed and every job
followed to its end. With `stopping` set nothing new is sent or followed: what is recorded
waits for the next run. On a cluster a mover works for one unit (`unit_id`): it takes up
only that unit's open packages (a job unit also those of the job's earlier rounds), and
`finish` follows them to their end before the unit ends, so that the worker taking a unit
over goes on with what its last owner recorded. Folders stay the round's (created through
Graph first), so a manifest names each file's folder by its id.

The SharePoint REST calls go to the target site's host with an app-only token for it (a
certificate credential: SharePoint refuses secret-based app-only tokens) through the tenant's
one pacer, the Graph client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sharelift.clouds import Cloud
from sharelift.engine.mover import FileWork, MoverFactory, RoundContext
from sharelift.engine.tasks import wait_all
from sharelift.graph.client import GraphClient
from sharelift.migration_api import blob
from sharelift.migration_api.crypto import KeyFileError
from sharelift.migration_api.intake import Intake, read_user_map
from sharelift.migration_api.jobs import MigrationApiError, MigrationService, read_queue
from sharelift.migration_api.runs import REFUSED, Kit, PackageRun, Packed
from sharelift.migration_api.sending import PackageSender
from sharelift.migration_api.site import package_target, rest_endpoint
from sharelift.option_kinds import MIB
from sharelift.state import MigrationPackageRecord, PackageFileRecord, PackageStatus

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
    archive_small_files: bool = False
    """Pack files under 100 KB into zip archives listed in ArchivedFiles.xml (`archive.py`)."""
    packers: int = 3
    """Packages uploading at once."""
    packages_in_flight: int = 64
    """Packages sent and not yet settled, at most (memory: each holds its files' records;
    the service also asks for at most 5,000 jobs queued per site collection)."""
    unit_id: int | None = None
    """The cluster's unit this mover works for (None: a run on one machine). A unit takes up
    only its own open packages, and keeps their keys in the state store, not in `key_dir`."""
    earlier_rounds: bool = False
    """With `unit_id`: also take up the open packages of the job's earlier rounds (a job
    unit's: every unit of those rounds has ended)."""

    def __repr__(self) -> str:
        return (
            f"MigrationApiSettings(key_dir={self.key_dir}, own_storage={bool(self.storage)}, "
            f"unit={self.unit_id})"
        )


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
        self._intake: Intake | None = None
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
        self._intake = Intake(context, target, (root_item, root_unique), self._users)
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
            unit_id=settings.unit_id,
            archive_small_files=settings.archive_small_files,
        )
        if kit.queue_uri is not None:
            kit.queue_events = self._queue_events
        for record in self._open_packages():
            run = PackageRun(kit, record.package_id, record)
            for f in context.store.package_files(record.id):
                self._resumed[f.item_row] = (run, f)
            self._followers.append(asyncio.create_task(self._resume(run)))
        self._packers = [asyncio.create_task(self._packer()) for _ in range(settings.packers)]

    async def submit(self, work: FileWork) -> None:
        if self._aborted or self.context.stopping.is_set():
            return
        assert self._intake is not None
        resumed = self._resumed.pop(work.row, None)
        packed = await self._intake.prepare(work)
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
        for record in self._open_packages():
            if record.status in (PackageStatus.PACKING, PackageStatus.SUBMITTING):
                PackageRun(kit, record.package_id, record).close(
                    PackageStatus.FAILED, "no file of the job needs it any more"
                )

    def abort(self) -> None:
        self._aborted = True
        for task in [*self._packers, *self._followers]:
            task.cancel()

    def _open_packages(self) -> list[MigrationPackageRecord]:
        """The open packages this mover takes up: the job's on one machine; on a cluster its
        unit's own (and, for a job unit, those of the job's earlier rounds), so that no two
        units follow one package."""
        context, unit = self.context, self.settings.unit_id
        found = context.store.migration_packages(context.job.id, open_only=True)
        if unit is None:
            return found
        earlier = self.settings.earlier_rounds
        this_round = context.round_id
        return [p for p in found if p.unit_id == unit or (earlier and p.round_id != this_round)]

    # --- filling -----------------------------------------------------------------------------

    def _new_run(self, files: dict[int, Packed]) -> PackageRun:
        assert self._kit is not None
        run = PackageRun(self._kit, str(uuid.uuid4()), None)
        run.files.update(files)
        return run

    async def _seal(self, run: PackageRun) -> None:
        await self._sealed.put(run)

    # --- packages ------------------------------------------------------------------------------

    async def _packer(self) -> None:
        while (run := await self._sealed.get()) is not None:
            if self._aborted:
                continue
            await self._in_flight.acquire()
            try:
                sent = await PackageSender(run).send()
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
            if self.settings.unit_id is not None and not self.context.stopping.is_set():
                # A unit walked its whole sub-tree (the walk is over and was not stopped)
                # and no file needs the package any more: nobody else would close it.
                run.close(PackageStatus.FAILED, "no file of the job needs it any more")
            return  # on one machine, release_stale closes it after a complete round
        if await PackageSender(run).send():
            await self._see_through(run)

    async def _queue_events(self, job_id: str) -> list[dict[str, str]]:
        """The events the job queue holds for `job_id`. One reader at a time takes every
        waiting message (in a worker thread) and sorts them by job."""
        kit = self._kit
        assert kit is not None and kit.queue_uri is not None
        async with self._queue_lock:
            keys: dict[str, bytes] = {}
            for record in self._open_packages():
                if record.migration_job_id:
                    with contextlib.suppress(KeyFileError):
                        keys[record.migration_job_id.lower()] = kit.key(record)
            for event in await asyncio.to_thread(read_queue, kit.queue_uri, keys, kit.ca_file):
                self._queue_buffer.setdefault(event.get("JobId", "").lower(), []).append(event)
            return self._queue_buffer.pop(job_id.lower(), [])
