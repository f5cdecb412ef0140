"""One package's life: what it is, and its job followed to the end and its files proved.

    PackageRun            the package: its record, its files (by item row) and what its job
                          said (`JobReport`); sent by `PackageSender` (`sending.py`)
    PackageRun.follow()   GetMigrationJobProgress (and the queue, when one is used) until the
                          job's last event, the token saved at each answer with where the
                          job stands and its errors and warnings; then its logs
    PackageRun.settle()   every file looked up through Graph (a listing per folder) and given
                          its one outcome (an Office file a library rewrote on import proved
                          part by part, as for Graph uploads); the key deleted, the package
                          `closed`

Where a key is kept (`Kit.key`): on one machine in a 0600 file beside the state store; for a
cluster's unit in the state store itself (PostgreSQL, which holds the containers' SAS URIs
under the same access rules), so that the worker taking a unit over can go on with its
packages. The store erases it once the job has ended (`ended`, `closed` or `failed`).

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
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient

from sharelift.engine.enriched import EnrichedFiles, Verdict
from sharelift.engine.mover import FileWork, RoundContext
from sharelift.engine.outcomes import mtime_ns
from sharelift.engine.reader import open_readonly
from sharelift.graph.drive import DriveClient
from sharelift.graph.errors import GraphError
from sharelift.migration_api import blob
from sharelift.migration_api.crypto import KEY_BYTES, KeyFileError, delete_key, load_key
from sharelift.migration_api.jobs import (
    JOB_NOT_FOUND,
    MigrationApiError,
    MigrationService,
    open_envelope,
)
from sharelift.migration_api.package import PackageTarget, PackageUser
from sharelift.migration_api.reconcile import (
    JOB_ERROR,
    JOB_FATAL,
    NOT_IMPORTED,
    JobReport,
    list_folders,
)
from sharelift.state import MigrationPackageRecord, PackageFileRecord, PackageStatus, ServiceJob

REFUSED = "MIGRATION_API_REFUSED"


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
    unit_id: int | None = None
    """The cluster's unit the packages are made for (None: one machine). A unit's packages
    keep their keys in the state store, so that another worker can take the unit over; on
    one machine a key is a file in `key_dir`."""
    archive_small_files: bool = False
    """Files under 100 KB go in zip archives (ArchivedFiles.xml, `archive.py`)."""
    users: list[PackageUser] = field(default_factory=list)
    queue_events: Callable[[str], Awaitable[list[dict[str, str]]]] | None = None
    """Events read from the job queue for a job id (None: no queue)."""

    @property
    def drive(self) -> DriveClient:
        return self.context.drive

    def key(self, record: MigrationPackageRecord) -> bytes:
        """The package's AES key, from its file or the state store; KeyFileError (naming the
        package, never the key) when it is gone."""
        if record.key_file:
            return load_key(Path(record.key_file))
        key = self.context.store.package_key(record.id)
        if key is None or len(key) != KEY_BYTES:
            raise KeyFileError(f"the key of package {record.package_id} is no longer kept")
        return key


class PackageRun:
    """One package (see the module docstring). `files` are by item row; a resumed package
    (`record` given) gets its files attached as this round's plan submits them again. `record`
    is None until `PackageSender` has recorded the package."""

    def __init__(self, kit: Kit, package_id: str, record: MigrationPackageRecord | None) -> None:
        self.kit = kit
        self.package_id = package_id
        self.record = record
        self.taken_up = record is not None
        """Made by an earlier run (or a unit's last owner): a blob it stored may not have been
        recorded before it stopped (`sending.py` checks before uploading it)."""
        self.files: dict[int, Packed] = {}
        self.report = JobReport()

    @property
    def row(self) -> int:
        assert self.record is not None
        return self.record.id

    def refresh(self) -> None:
        """The record as the store now has it."""
        self.record = self.kit.context.store.migration_package(self.row)

    def containers(self) -> tuple[ContainerClient, ContainerClient]:
        """The package's content and manifest containers, opened (a blocking call)."""
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
        self.refresh()
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
            return self.kit.key(self.record)
        except KeyFileError:
            return b""

    async def _read_logs(self) -> None:
        names = [n for n in self.report.log_files if n.lower().endswith(".err")]
        if not names or self.record is None:
            return
        try:
            key = self.kit.key(self.record)
            _, manifests = await asyncio.to_thread(self.containers)
            for name in names:
                text = await asyncio.to_thread(blob.get_decrypted, manifests, name, key)
                self.report.take_log(
                    text.decode("utf-8", "replace"),
                    [(p.record.file_id, p.url) for p in self.files.values()],
                )
        except (MigrationApiError, blob.StorageError, KeyFileError, ValueError, OSError):
            return  # the events said what failed; a log we cannot read adds nothing

    # --- settling --------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Give every attached file its outcome, proved through Graph; close the package."""
        outcomes, target = self.kit.context.outcomes, self.kit.target
        fatal = self.report.fatal
        enriched = EnrichedFiles(self.kit.context)
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
            digest = record.quick_xor or ""
            mismatch = outcomes.arrived(packed.work, item, digest, record.size, packed.mtime)
            if not mismatch:
                continue
            verdict = await self._judge(enriched, packed, item.id)
            if verdict.verified_by is not None:
                outcomes.enriched(
                    packed.work, item, digest, record.size, packed.mtime, verdict.verified_by,
                    verdict.reason,
                )  # fmt: skip
                continue
            reason = f"{mismatch}; {verdict.reason}" if verdict.reason else mismatch
            outcomes.failed(packed.work, "HASH_MISMATCH", reason)
        self.close(PackageStatus.CLOSED)

    @staticmethod
    async def _judge(enriched: EnrichedFiles, packed: Packed, item_id: str) -> Verdict:
        """The verdict on a file imported with another hash than the bytes packaged: a
        library's rewrite of an Office file is told from corruption as for Graph uploads
        (`engine/enriched.py`), against the source as it was packaged."""
        try:
            fd = open_readonly(packed.work.source)
        except OSError as exc:
            return Verdict(None, f"the source cannot be read to prove it: {exc.strerror or exc}")
        try:
            st = os.fstat(fd)
            if (st.st_size, mtime_ns(st.st_mtime)) != (packed.record.size, packed.record.mtime_ns):
                return Verdict(None, "the source changed since it was packaged")
            return await enriched.judge(packed.url.rsplit("/", 1)[-1], item_id, fd)
        finally:
            os.close(fd)

    def close(self, status: PackageStatus, message: str | None = None) -> None:
        """The package needs nothing more: its key is deleted (its file; the store erases a
        key it kept with the status), its own containers too."""
        if self.record is None:
            return
        kit = self.kit
        kit.context.store.set_package_status(self.row, status, message=message)
        if self.record.key_file:
            delete_key(Path(self.record.key_file))
        if self.record.own_containers and kit.storage is not None:
            # Cleanup only (the import is settled): a container left behind is not an error.
            with contextlib.suppress(blob.StorageError, AzureError):
                blob.delete_own_containers(
                    kit.storage, [self.record.data_uri, self.record.manifest_uri], kit.ca_file
                )
        self.refresh()
