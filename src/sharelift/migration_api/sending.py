"""A package's sending half: its containers and key, content blobs, manifests, and the job.

    PackageSender.send()   containers + key (recorded with the files before any upload; the
                           key in a 0600 file, or in the state store for a cluster's unit),
                           content blobs read, hashed, encrypted and uploaded (those a killed
                           run stored are kept; with `archive_small_files` the small files
                           packed into at most two zip archives, `archive.py`), the
                           manifests (ArchivedFiles.xml listing the archives), `submitting`,
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
from sharelift.migration_api import archive, blob
from sharelift.migration_api.crypto import KeyFileError, new_key, save_key
from sharelift.migration_api.jobs import Containers, MigrationApiError
from sharelift.migration_api.package import ManifestFile, package_documents
from sharelift.migration_api.runs import REFUSED, PackageRun, Packed
from sharelift.state import PackageStatus

UPLOAD_FAILED = "MIGRATION_UPLOAD_FAILED"


def _check_unchanged(st: os.stat_result, size: int, mtime: int) -> None:
    """ValueError unless the open file is the regular file of `size` and `mtime` (ns) that
    was packaged."""
    if not stat.S_ISREG(st.st_mode) or (st.st_size, mtime_ns(st.st_mtime)) != (size, mtime):
        raise ValueError("the file changed since it was packaged")


class PackageSender:
    """Sends one package (see the module docstring): `run` holds its record and files."""

    def __init__(self, run: PackageRun) -> None:
        self.run = run
        self.kit = run.kit
        self.archives: list[archive.Archive] = []
        """The archives stored for this package (ArchivedFiles.xml), once its content is."""

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
        """Every file's bytes stored: small ones in archives when `archive_small_files`, the
        others (and those the archives had no room for) as blobs of their own."""
        archived: list[list[Packed]] = []
        singles = list(self.run.files.values())
        if self.kit.archive_small_files:
            by_value = {p.record.blob: p for p in singles if archive.fits(p.record.size)}
            groups = archive.group([(v, p.record.size) for v, p in by_value.items()])
            archived = [[by_value[v] for v in names] for names in groups]
            packed = {v for names in groups for v in names}
            singles = [p for p in singles if p.record.blob not in packed]

        async def one(packed: Packed) -> None:
            async with self.kit.uploads:
                if self.kit.context.stopping.is_set():
                    return
                await self._upload_one(container, key, packed)

        async def pack(index: int, members: list[Packed]) -> None:
            async with self.kit.uploads:
                if self.kit.context.stopping.is_set():
                    return
                await self._upload_archive(container, key, index, members)

        self.archives = []
        tasks = [asyncio.create_task(pack(i, m)) for i, m in enumerate(archived)]
        tasks += [asyncio.create_task(one(p)) for p in singles]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        self.archives.sort(key=lambda a: a.name)

    async def _upload_archive(
        self, container: ContainerClient, key: bytes, index: int, members: list[Packed]
    ) -> None:
        """One archive of small files built, stored (or found stored by a run taken up
        again) and recorded; a member that cannot be read fails alone, a refused upload fails
        the archive's files."""
        name = archive.archive_name(index)
        try:
            built = await asyncio.to_thread(self._read_and_pack, container, key, name, members)
        except blob.StorageError as exc:
            if exc.status in (401, 403):
                raise
            for packed in members:
                if packed.record.item_row in self.run.files:
                    self._drop(packed, UPLOAD_FAILED, str(exc))
            return
        stored, adopted, packed_members, dropped = built
        for packed, code, text in dropped:
            self._drop(packed, code, text)
        if stored is None:
            return
        store, tally = self.kit.context.store, self.kit.context.outcomes.tally
        for packed, member in packed_members:
            record = packed.record
            store.package_file_stored(
                self.run.row, record.item_row, quick_xor=member.quick_xor, md5=member.md5
            )
            packed.record = record._replace(quick_xor=member.quick_xor, md5=member.md5, stored=True)
            path = packed.work.plan.item.relpath
            if adopted:
                tally.resumed(path, record.size)
            else:
                tally.sent(record.size, path)
        values = tuple(p.record.blob for p, _ in packed_members)
        self.archives.append(archive.Archive(name, stored.quick_xor, values))

    def _read_and_pack(
        self, container: ContainerClient, key: bytes, name: str, members: list[Packed]
    ) -> tuple[
        blob.StoredBlob | None,
        bool,
        list[tuple[Packed, archive.Member]],
        list[tuple[Packed, str, str]],
    ]:
        """The archive `name` of `members` built and stored (found stored already in a
        package taken up again): what was stored (None when no member could be read),
        whether it was found, each member packed, and the members that could not be read
        (with their failure code and text)."""
        writer = archive.ArchiveWriter()
        packed_members: list[tuple[Packed, archive.Member]] = []
        dropped: list[tuple[Packed, str, str]] = []
        for packed in members:
            try:
                data = self._read_whole(packed)
            except OSError as exc:
                dropped.append((packed, "READ_ERROR", exc.strerror or str(exc)))
                continue
            except ValueError as exc:
                dropped.append((packed, "SOURCE_CHANGING", str(exc)))
                continue
            packed_members.append((packed, writer.add(packed.record.blob, data)))
        if not packed_members:
            return None, False, packed_members, dropped
        data = writer.finish()
        view = memoryview(data)

        def read(at: int, n: int) -> bytes:
            return bytes(view[at : at + n])

        found = None
        if self.run.taken_up:
            found = blob.stored_already(container, name, read, len(data), key)
        stored = found or blob.put_bytes(container, name, data, key, self.kit.pool)
        return stored, found is not None, packed_members, dropped

    def _read_whole(self, packed: Packed) -> bytes:
        """A small file's bytes, as packaged (ValueError when it changed since)."""
        record = packed.record
        fd = open_readonly(packed.work.source)
        try:
            st = os.fstat(fd)
            _check_unchanged(st, record.size, record.mtime_ns)
            data = os.pread(fd, record.size, 0)
            after = os.fstat(fd)
            if len(data) != record.size or (after.st_size, after.st_mtime_ns) != (
                st.st_size,
                st.st_mtime_ns,
            ):
                raise ValueError("the file changed while it was read")
            return data
        finally:
            os.close(fd)

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
            _check_unchanged(st, record.size, record.mtime_ns)

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
        documents = package_documents(kit.target, entries, [u for _, u in users], self.archives)
        for name, pieces in documents:
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
