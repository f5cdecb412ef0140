"""One package's life: containers and key, blobs, manifests, the job, its events, the proof.

    PackageRun.send()     containers + key (recorded with the files before any upload),
                          content blobs (those a killed run stored are kept), the manifests,
                          `submitting`, CreateMigrationJobEncrypted, `submitted` + job id
    PackageRun.follow()   GetMigrationJobProgress (and the queue, when one is used) until the
                          job's last event, the token saved at each answer with where the
                          job stands and its errors and warnings; then its logs
    PackageRun.settle()   every file looked up through Graph (a listing per folder) and given
                          its one outcome; the key deleted, the package `closed`

Write order (DESIGN.md invariant 4, issue 14): a package is recorded the moment its
containers exist; the job id is saved the moment the service answers, after the package was
marked `submitting`. A run killed between the two finds `submitting` and submits once more:
provided containers serve one job ("exclusively once", migration-azure.md), so a second
submission of a package the service already took is refused, and the package's files are then
proved through Graph alone. A stopped round (`stopping`) starts nothing new: what is recorded
is resumed by the next run's `MigrationApiMover.start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient

from sharelift.engine.mover import FileWork, RoundContext
from sharelift.engine.outcomes import mtime_ns
from sharelift.engine.reader import open_readonly
from sharelift.graph.drive import DriveClient
from sharelift.graph.errors import GraphError
from sharelift.migration_api import blob
from sharelift.migration_api.crypto import KeyFileError, delete_key, load_key, new_key, save_key
from sharelift.migration_api.jobs import (
    JOB_NOT_FOUND,
    Containers,
    MigrationApiError,
    MigrationService,
    open_envelope,
)
from sharelift.migration_api.package import (
    ManifestFile,
    PackageTarget,
    PackageUser,
    package_documents,
)
from sharelift.migration_api.reconcile import (
    JOB_ERROR,
    JOB_FATAL,
    NOT_IMPORTED,
    JobReport,
    list_folders,
)
from sharelift.state import MigrationPackageRecord, PackageFileRecord, PackageStatus, ServiceJob

REFUSED = "MIGRATION_API_REFUSED"
UPLOAD_FAILED = "MIGRATION_UPLOAD_FAILED"


@dataclass(eq=False)
class Packed:
    """One file in a package, with what its manifest entry needs."""

    work: FileWork
    record: PackageFileRecord
    url: str
    """Web-relative (`Shared Documents/a/b.txt`)."""
    folder_item: str
    """Its folder's driveItem id (for the listing that proves it)."""
    folder_unique: str
    created: datetime
    modified: datetime
    mtime: float
    """The modification time the file had when it was packaged (seconds, as the walk reads
    them), recorded with it once it is proved."""
    author: PackageUser | None


@dataclass
class Kit:
    """What every package of a round shares."""

    context: RoundContext
    target: PackageTarget
    service: MigrationService
    pool: ThreadPoolExecutor
    uploads: asyncio.Semaphore
    """Blobs uploading at once, across packages."""
    sessions: blob.Sessions
    key_dir: Path
    ca_file: str | None
    storage: str | None
    """A connection string to the user's own storage account (else: provided containers)."""
    queue_uri: str | None
    poll_interval: float
    users: list[PackageUser] = field(default_factory=list)
    queue_events: Callable[[str], Awaitable[list[dict[str, str]]]] | None = None
    """Events read from the job queue for a job id (None: no queue)."""

    @property
    def drive(self) -> DriveClient:
        return self.context.drive


class PackageRun:
    """One package (see the module docstring). `files` are by item row; a resumed package
    (`record` given) gets its files attached as this round's plan submits them again."""

    def __init__(self, kit: Kit, package_id: str, record: MigrationPackageRecord | None) -> None:
        self.kit = kit
        self.package_id = package_id
        self.record = record
        self.files: dict[int, Packed] = {}
        self.report = JobReport()

    @property
    def row(self) -> int:
        assert self.record is not None
        return self.record.id

    def _refresh(self) -> None:
        self.record = self.kit.context.store.migration_package(self.row)

    # --- sending ---------------------------------------------------------------------------------

    async def send(self) -> bool:
        """Store what is missing and submit the job; True when the service holds the job (or
        held it already). Files that cannot be sent get their outcome here; a stop leaves the
        package recorded for the next run."""
        context = self.kit.context
        if not self.files or context.stopping.is_set():
            return False
        try:
            if self.record is None:
                await self._open()
            key = load_key(Path(self.record.key_file))  # type: ignore[union-attr]
            content, manifests = await asyncio.to_thread(self._containers)
            await self._upload_content(content, key)
            if context.stopping.is_set() or not self.files:
                return False
            await self._upload_manifests(manifests, key)
        except (MigrationApiError, blob.StorageError) as exc:
            self._fail_all(REFUSED, str(exc))
            return False
        if context.stopping.is_set():
            return False
        return await self._submit(key)

    async def _open(self) -> None:
        """Containers and key, recorded with the files before anything is uploaded."""
        kit, context = self.kit, self.kit.context
        if kit.storage is not None:
            data_uri, manifest_uri = await asyncio.to_thread(
                blob.own_containers, kit.storage, self.package_id, kit.ca_file
            )
            key = new_key()
        else:
            provided = await kit.service.provision_containers()
            data_uri, manifest_uri, key = provided.data_uri, provided.manifest_uri, provided.key
        key_file = kit.key_dir / f"{self.package_id}.key"
        save_key(key_file, key)
        row = context.store.create_migration_package(
            context.job.id,
            context.round_id,
            self.package_id,
            data_uri=data_uri,
            manifest_uri=manifest_uri,
            queue_uri=kit.queue_uri,
            key_file=str(key_file),
            own_containers=kit.storage is not None,
            files=[p.record for p in self.files.values()],
        )
        self.record = context.store.migration_package(row)

    def _containers(self) -> tuple[ContainerClient, ContainerClient]:
        kit, record = self.kit, self.record
        assert record is not None
        if record.own_containers:
            if kit.storage is None:
                raise MigrationApiError(
                    f"package {self.package_id} was made in your own storage account: give its "
                    "connection string again (migration_storage) to finish it"
                )
            return (
                blob.own_container(kit.storage, record.data_uri, kit.ca_file, kit.sessions),
                blob.own_container(kit.storage, record.manifest_uri, kit.ca_file, kit.sessions),
            )
        return (
            blob.open_container(record.data_uri, kit.ca_file, kit.sessions),
            blob.open_container(record.manifest_uri, kit.ca_file, kit.sessions),
        )

    async def _upload_content(self, container: ContainerClient, key: bytes) -> None:
        async def one(packed: Packed) -> None:
            async with self.kit.uploads:
                if self.kit.context.stopping.is_set():
                    return
                await self._upload_one(container, key, packed)

        tasks = [asyncio.create_task(one(p)) for p in list(self.files.values())]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _upload_one(self, container: ContainerClient, key: bytes, packed: Packed) -> None:
        record, store = packed.record, self.kit.context.store
        tally, path = self.kit.context.outcomes.tally, packed.work.plan.item.relpath
        if (
            record.stored
            and record.md5 is not None
            and await asyncio.to_thread(blob.has_snapshot, container, record.blob, record.md5)
        ):
            tally.resumed(path, record.size)  # stored by an earlier run, snapshot included
            return
        try:
            stored = await asyncio.to_thread(self._read_and_put, container, key, packed)
        except blob.StorageError as exc:
            if exc.status in (401, 403):
                raise  # the container's SAS is refused: nothing of the package can go
            self._drop(packed, UPLOAD_FAILED, str(exc))
            return
        except (OSError, ValueError) as exc:
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._drop(packed, "SOURCE_CHANGING" if isinstance(exc, ValueError) else "READ_ERROR",
                       text)  # fmt: skip
            return
        store.package_file_stored(
            self.row, record.item_row, quick_xor=stored.quick_xor, md5=stored.md5
        )
        packed.record = record._replace(quick_xor=stored.quick_xor, md5=stored.md5, stored=True)
        tally.sent(record.size, path)  # its bytes are in Azure; the import follows

    def _read_and_put(
        self, container: ContainerClient, key: bytes, packed: Packed
    ) -> blob.StoredBlob:
        record = packed.record
        fd = open_readonly(packed.work.source)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_size, mtime_ns(st.st_mtime)) != (
                record.size,
                record.mtime_ns,
            ):
                raise ValueError("the file changed since it was packaged")
            stored = blob.put_file(
                container,
                record.blob,
                lambda at, n: os.pread(fd, n, at),
                record.size,
                key,
                self.kit.pool,
            )
            after = os.fstat(fd)
            if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise ValueError("the file changed while it was read")
            return stored
        finally:
            os.close(fd)

    async def _upload_manifests(self, container: ContainerClient, key: bytes) -> None:
        kit = self.kit
        entries = [
            ManifestFile(
                file_id=p.record.file_id,
                blob=p.record.blob,
                url=p.url,
                folder_id=p.folder_unique,
                size=p.record.size,
                created=p.created,
                modified=p.modified,
                md5=p.record.md5 or "",
                quick_xor=p.record.quick_xor or "",
                author=p.author.id if p.author is not None else None,
            )
            for p in self.files.values()
        ]
        users = sorted({p.author.id: p.author for p in self.files.values() if p.author}.items())
        for name, pieces in package_documents(kit.target, entries, [u for _, u in users]):
            data = "".join(pieces).encode("utf-8")
            await asyncio.to_thread(blob.put_bytes, container, name, data, key, kit.pool)

    async def _submit(self, key: bytes) -> bool:
        context, record = self.kit.context, self.record
        assert record is not None
        store = context.store
        store.set_package_status(self.row, PackageStatus.SUBMITTING)
        containers = Containers(record.data_uri, record.manifest_uri, key)
        try:
            job_id = await self.kit.service.create_job(
                self.kit.target.web_id, containers, record.queue_uri
            )
        except MigrationApiError as exc:
            if record.status is PackageStatus.SUBMITTING and not record.own_containers:
                # A run killed before it could save the job id submitted it: the provided
                # containers refuse a second job. Prove the files through Graph alone.
                store.set_package_status(
                    self.row, PackageStatus.ENDED, message=f"submitted by an earlier run ({exc})"
                )
                self.report.ended = True
                self._refresh()
                return True
            store.set_package_status(self.row, PackageStatus.FAILED, message=str(exc))
            self._fail_all(REFUSED, str(exc))
            return False
        store.set_package_status(self.row, PackageStatus.SUBMITTED, migration_job_id=job_id)
        self._refresh()
        return True

    # --- following -------------------------------------------------------------------------------

    async def follow(self) -> bool:
        """Read the job's events until its last one (or a stop); True when it ended. Then its
        error logs."""
        record, kit, store = self.record, self.kit, self.kit.context.store
        assert record is not None
        if record.status is PackageStatus.ENDED or record.migration_job_id is None:
            self.report.ended = True
            return True
        job_id, token = record.migration_job_id, record.next_token
        if record.job_state is not None and self.report.job is None:
            # Taken up from an earlier run: go on from what the store says the job did.
            self.report.job = ServiceJob(
                record.job_state, record.last_event, record.last_event_at,
                record.files_imported, record.bytes_imported,
            )  # fmt: skip
        while not self.report.ended:
            if kit.context.stopping.is_set():
                return False
            try:
                progress = await kit.service.progress(job_id, token)
            except MigrationApiError as exc:
                if JOB_NOT_FOUND in str(exc) or "-2147213146" in str(exc):
                    self.report.lost(str(exc))
                    self._save_progress(token)
                    break
                raise
            events = progress.events
            if kit.queue_events is not None:
                events = events + await kit.queue_events(job_id)
            for event in events:
                if event.get("Label") == "Encrypted":
                    # Progress logs are plain JSON in the documents' sample; should the service
                    # encrypt them as it does queue messages, they are opened the same way.
                    opened = open_envelope(json.dumps(event), {job_id.lower(): self._key()})
                    if opened is None:
                        continue
                    event = opened
                self.report.take(event)
            if progress.next_token != token or events:
                token = progress.next_token
                self._save_progress(token)
            if not self.report.ended:
                await asyncio.sleep(kit.poll_interval)
        await self._read_logs()
        warned = self.report.warnings[:1]
        message = self.report.fatal or (f"warning: {warned[0]}" if warned else None)
        store.set_package_status(self.row, PackageStatus.ENDED, message=message)
        self._refresh()
        return True

    def _save_progress(self, token: str) -> None:
        """Where reading the events stands, what they said, and their errors and warnings
        (one commit)."""
        report = self.report
        problems, report.new_problems = report.new_problems, []
        self.kit.context.store.package_progress(
            self.row,
            token,
            errors=report.error_count,
            warnings=report.warning_count,
            job=report.job,
            events=problems,
        )

    def _key(self) -> bytes:
        assert self.record is not None
        try:
            return load_key(Path(self.record.key_file))
        except KeyFileError:
            return b""

    async def _read_logs(self) -> None:
        names = [n for n in self.report.log_files if n.lower().endswith(".err")]
        if not names or self.record is None:
            return
        try:
            key = load_key(Path(self.record.key_file))
            _, manifests = await asyncio.to_thread(self._containers)
            for name in names:
                text = await asyncio.to_thread(blob.get_decrypted, manifests, name, key)
                self.report.take_log(
                    text.decode("utf-8", "replace"),
                    [(p.record.file_id, p.url) for p in self.files.values()],
                )
        except (MigrationApiError, blob.StorageError, ValueError, OSError):
            return  # the events said what failed; a log we cannot read adds nothing

    # --- settling --------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Give every attached file its outcome, proved through Graph; close the package."""
        outcomes, target = self.kit.context.outcomes, self.kit.target
        fatal = self.report.fatal
        waiting: list[Packed] = []
        for packed in self.files.values():
            error = self.report.error_for(
                packed.record.file_id, packed.url, target.server_url(packed.url)
            )
            if error is not None:
                outcomes.failed(packed.work, JOB_ERROR, error)
            else:
                waiting.append(packed)
        found = {}
        if waiting:
            try:
                found = await list_folders(self.kit.drive, (p.folder_item for p in waiting))
            except GraphError as exc:
                for packed in waiting:
                    outcomes.failed(packed.work, exc.code or "verify", f"cannot verify: {exc}")
                waiting = []
        for packed in waiting:
            item = found.get((packed.folder_item, packed.url.rsplit("/", 1)[-1].lower()))
            record = packed.record
            if item is None or not item.is_file:
                why = fatal or "the job ended without importing it"
                outcomes.failed(packed.work, JOB_FATAL if fatal else NOT_IMPORTED, why)
                continue
            mismatch = outcomes.arrived(
                packed.work, item, record.quick_xor or "", record.size, packed.mtime
            )
            if mismatch:
                outcomes.failed(packed.work, "HASH_MISMATCH", mismatch)
        self.close(PackageStatus.CLOSED)

    def close(self, status: PackageStatus, message: str | None = None) -> None:
        """The package needs nothing more: its key is deleted, its own containers too."""
        if self.record is None:
            return
        kit = self.kit
        kit.context.store.set_package_status(self.row, status, message=message)
        delete_key(Path(self.record.key_file))
        if self.record.own_containers and kit.storage is not None:
            # Cleanup only (the import is settled): a container left behind is not an error.
            with contextlib.suppress(blob.StorageError, AzureError):
                blob.delete_own_containers(
                    kit.storage, [self.record.data_uri, self.record.manifest_uri], kit.ca_file
                )
        self._refresh()

    def _drop(self, packed: Packed, code: str, message: str) -> None:
        """A file that cannot go in this package fails now and leaves it."""
        self.files.pop(packed.record.item_row, None)
        if self.record is not None:
            self.kit.context.store.drop_package_files(self.row, [packed.record.item_row])
        self.kit.context.outcomes.failed(packed.work, code, message)

    def _fail_all(self, code: str, message: str) -> None:
        for packed in list(self.files.values()):
            self.kit.context.outcomes.failed(packed.work, code, message)
        self.files.clear()
        if self.record is not None:
            self.close(PackageStatus.FAILED, message)
