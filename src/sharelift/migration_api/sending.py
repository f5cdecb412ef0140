"""A package's sending half: its containers and key, content blobs, manifests, and the job.

    PackageSender.send()   containers + key (recorded with the files before any upload; the
                           key in a 0600 file, or in the state store for a cluster's unit),
                           content blobs read, hashed, encrypted and uploaded (those a killed
                           run stored are kept), the manifests, `submitting`,
                           CreateMigrationJobEncrypted, `submitted` + job id

A file that cannot be read or stored fails here and leaves the package; a refusal of the
containers or of the job fails every file still in it. What the package is (its record, files
and job report) stays with its `PackageRun` (`runs.py`), which follows the job the sender
submitted and settles the files. See `runs.py` for the write order a killed run relies on.
"""

from __future__ import annotations

import asyncio
import os
import stat

from azure.storage.blob import ContainerClient

from sharelift.engine.outcomes import mtime_ns
from sharelift.engine.reader import open_readonly
from sharelift.migration_api import blob
from sharelift.migration_api.crypto import KeyFileError, new_key, save_key
from sharelift.migration_api.jobs import Containers, MigrationApiError
from sharelift.migration_api.package import ManifestFile, package_documents
from sharelift.migration_api.runs import REFUSED, PackageRun, Packed
from sharelift.state import PackageStatus

UPLOAD_FAILED = "MIGRATION_UPLOAD_FAILED"


class PackageSender:
    """Sends one package (see the module docstring): `run` holds its record and files."""

    def __init__(self, run: PackageRun) -> None:
        self.run = run
        self.kit = run.kit

    async def send(self) -> bool:
        """Store what is missing and submit the job; True when the service holds the job (or
        held it already). Files that cannot be sent get their outcome here; a stop leaves the
        package recorded for the next run."""
        run, context = self.run, self.kit.context
        if not run.files or context.stopping.is_set():
            return False
        try:
            if run.record is None:
                await self._open()
            assert run.record is not None
            key = self.kit.key(run.record)
            content, manifests = await asyncio.to_thread(run.containers)
            await self._upload_content(content, key)
            if context.stopping.is_set() or not run.files:
                return False
            await self._upload_manifests(manifests, key)
        except (MigrationApiError, blob.StorageError, KeyFileError) as exc:
            self._fail_all(REFUSED, str(exc))
            return False
        if context.stopping.is_set():
            return False
        return await self._submit(key)

    async def _open(self) -> None:
        """Containers and key, recorded with the files before anything is uploaded."""
        run, kit, context = self.run, self.kit, self.kit.context
        if kit.storage is not None:
            data_uri, manifest_uri = await asyncio.to_thread(
                blob.own_containers, kit.storage, run.package_id, kit.ca_file
            )
            key = new_key()
        else:
            provided = await kit.service.provision_containers()
            data_uri, manifest_uri, key = provided.data_uri, provided.manifest_uri, provided.key
        kept: bytes | None = key  # a unit's key: in the state store (`Kit.key`)
        key_file = ""
        if kit.unit_id is None:
            path = kit.key_dir / f"{run.package_id}.key"
            save_key(path, key)
            key_file, kept = str(path), None
        row = context.store.create_migration_package(
            context.job.id,
            context.round_id,
            run.package_id,
            data_uri=data_uri,
            manifest_uri=manifest_uri,
            queue_uri=kit.queue_uri,
            key_file=key_file,
            own_containers=kit.storage is not None,
            files=[p.record for p in run.files.values()],
            unit_id=kit.unit_id,
            key=kept,
        )
        run.record = context.store.migration_package(row)

    async def _upload_content(self, container: ContainerClient, key: bytes) -> None:
        async def one(packed: Packed) -> None:
            async with self.kit.uploads:
                if self.kit.context.stopping.is_set():
                    return
                await self._upload_one(container, key, packed)

        tasks = [asyncio.create_task(one(p)) for p in list(self.run.files.values())]
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
            stored, adopted = await asyncio.to_thread(self._read_and_put, container, key, packed)
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
            self.run.row, record.item_row, quick_xor=stored.quick_xor, md5=stored.md5
        )
        packed.record = record._replace(quick_xor=stored.quick_xor, md5=stored.md5, stored=True)
        if adopted:
            tally.resumed(path, record.size)
        else:
            tally.sent(record.size, path)  # its bytes are in Azure; the import follows

    def _read_and_put(
        self, container: ContainerClient, key: bytes, packed: Packed
    ) -> tuple[blob.StoredBlob, bool]:
        """The file stored as its blob; True with it when a killed run had stored it already
        (in a package taken up again: found by `blob.stored_already`, not uploaded again)."""
        record = packed.record
        fd = open_readonly(packed.work.source)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (st.st_size, mtime_ns(st.st_mtime)) != (
                record.size,
                record.mtime_ns,
            ):
                raise ValueError("the file changed since it was packaged")

            def read(at: int, n: int) -> bytes:
                return os.pread(fd, n, at)

            found = None
            if self.run.taken_up:
                found = blob.stored_already(container, record.blob, read, record.size, key)
            stored = found or blob.put_file(
                container, record.blob, read, record.size, key, self.kit.pool
            )
            after = os.fstat(fd)
            if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                raise ValueError("the file changed while it was read")
            return stored, found is not None
        finally:
            os.close(fd)

    async def _upload_manifests(self, container: ContainerClient, key: bytes) -> None:
        kit, files = self.kit, self.run.files
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
            for p in files.values()
        ]
        users = sorted({p.author.id: p.author for p in files.values() if p.author}.items())
        for name, pieces in package_documents(kit.target, entries, [u for _, u in users]):
            data = "".join(pieces).encode("utf-8")
            await asyncio.to_thread(blob.put_bytes, container, name, data, key, kit.pool)

    async def _submit(self, key: bytes) -> bool:
        run, context = self.run, self.kit.context
        record = run.record
        assert record is not None
        store = context.store
        store.set_package_status(run.row, PackageStatus.SUBMITTING)
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
                    run.row, PackageStatus.ENDED, message=f"submitted by an earlier run ({exc})"
                )
                run.report.ended = True
                run.refresh()
                return True
            store.set_package_status(run.row, PackageStatus.FAILED, message=str(exc))
            self._fail_all(REFUSED, str(exc))
            return False
        store.set_package_status(run.row, PackageStatus.SUBMITTED, migration_job_id=job_id)
        run.refresh()
        return True

    def _drop(self, packed: Packed, code: str, message: str) -> None:
        """A file that cannot go in this package fails now and leaves it."""
        run = self.run
        run.files.pop(packed.record.item_row, None)
        if run.record is not None:
            self.kit.context.store.drop_package_files(run.row, [packed.record.item_row])
        self.kit.context.outcomes.failed(packed.work, code, message)

    def _fail_all(self, code: str, message: str) -> None:
        run = self.run
        for packed in list(run.files.values()):
            self.kit.context.outcomes.failed(packed.work, code, message)
        run.files.clear()
        if run.record is not None:
            run.close(PackageStatus.FAILED, message)
