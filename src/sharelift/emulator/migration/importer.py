"""A checked package applied to the tenant: its folders and files, with ids, times and authors.

`PackageImport.run` goes through the package's objects in manifest order. A folder or file is
created with the id, times and author the manifest gives it. A file's content is its blob, or,
when ArchivedFiles.xml lists its `FileValue`, that member of its archive (`archives.py`; the
manifest's `MD5Hash` is then of the member's bytes). An item that cannot be imported (a
missing blob, no snapshot, a bad MD5 or padding, a wrong size or checksum, an unusable archive
or member, a missing parent, a name conflict) is a JobError and the rest of the package is
still imported. A user the tenant does not know authors as the deleted user UserGroupMap.xml
describes (when it gives a SystemId) or else as the System Account, with a JobWarning either
way. The faults `migration_fail_after` (a JobFatalError after so many files) and the import
rates apply here.
"""

from __future__ import annotations

import base64
import hashlib
import time

from azure.storage.blob import ContainerClient

from sharelift.emulator.migration.archives import Archives
from sharelift.emulator.migration.blobs import BlobProblem, read_blob
from sharelift.emulator.migration.joblog import FatalJobError, JobLog
from sharelift.emulator.migration.jobs import Job
from sharelift.emulator.migration.package import Package, PackageObject, guid, parse_time
from sharelift.emulator.migration.target import (
    E_ITEM,
    Identity,
    ImportError_,
    ImportTarget,
    Library,
)
from sharelift.emulator.settings import Faults
from sharelift.quickxorhash import QuickXorHash

SYSTEM_ACCOUNT: Identity = {"user": {"displayName": "System Account"}}


class PackageImport:
    """Imports `package` (read and checked already) into `target` for `job`, reporting to
    `log` (see the module docstring)."""

    def __init__(
        self, job: Job, package: Package, target: ImportTarget, log: JobLog, faults: Faults
    ) -> None:
        self.job = job
        self.package = package
        self.target = target
        self.log = log
        self._faults = faults
        self._user_cache: dict[str, Identity] = {}
        self._imported_files = 0

    def run(self, libraries: dict[str, Library], content: ContainerClient) -> None:
        """Every object in order; `libraries` are the ones the package names, by list id;
        `content` (closed here) holds the files' blobs and archives. Raises FatalJobError."""
        counters = self.log.counters
        placed: dict[str, tuple[str, str]] = {}
        """Unique id -> (drive id, item id) of the folders known so far."""
        for library in libraries.values():
            placed[library.root_guid] = (library.drive_id, library.root_item_id)
        with content, Archives(self.package.archives, content, self.job.key) as archives:
            for obj in self.package.objects:
                counters.by_type[obj.object_type] = counters.by_type.get(obj.object_type, 0) + 1
                if obj.object_type == "SPFolder" and obj.id not in placed:
                    self._folder(obj, placed)
                elif obj.object_type == "SPFile":
                    self._file(obj, placed, content, archives)
                counters.objects += 1
                self.log.progress()

    def _parent(self, obj: PackageObject, placed: dict[str, tuple[str, str]]) -> tuple[str, str]:
        parent = guid(obj.get("ParentFolderId") or obj.get("ParentId")) or ""
        if parent in placed:
            return placed[parent]
        found = self.target.find(parent)
        if found is None or not found.is_folder:
            raise ImportError_(f"the parent folder {parent} does not exist", code=-2147024893)
        placed[parent] = (found.drive_id, found.item_id)
        return placed[parent]

    def _identity(self, user_id: str) -> Identity:
        if not user_id:
            return SYSTEM_ACCOUNT
        if user_id in self._user_cache:
            return self._user_cache[user_id]
        user = self.package.users.get(user_id)
        identity = SYSTEM_ACCOUNT
        if user is not None:
            found = self.target.user(user.upn)
            if found is not None:
                identity = found
            elif user.system_id:
                # "creates a new deleted User with the provided Sign-in and SystemId"
                identity = {"user": {"displayName": user.name or user.login, "email": user.email}}
                self.log.problem(
                    "JobWarning",
                    None,
                    0,
                    f"Failed to retrieve user '{user.login}' attributes from the SiteUsers; "
                    "falling back to passed in values",
                )
            else:
                self.log.problem("JobWarning", None, 0, f"Failed to ensure user '{user.login}'")
        self._user_cache[user_id] = identity
        return identity

    def _folder(self, obj: PackageObject, placed: dict[str, tuple[str, str]]) -> None:
        try:
            drive_id, parent_id = self._parent(obj, placed)
            name = obj.get("Name") or obj.url.rstrip("/").rsplit("/", 1)[-1]
            item_id = self.target.put_folder(
                drive_id,
                parent_id,
                obj.id,
                name,
                parse_time(obj.get("TimeCreated")),
                parse_time(obj.get("TimeLastModified")),
                self._identity(obj.get("Author")),
                self._identity(obj.get("ModifiedBy")),
            )
        except ImportError_ as exc:
            self.log.problem("JobError", obj, exc.code, str(exc))
            return
        placed[obj.id] = (drive_id, item_id)

    def _file(
        self,
        obj: PackageObject,
        placed: dict[str, tuple[str, str]],
        content: ContainerClient,
        archives: Archives,
    ) -> None:
        limit = self._faults.migration_fail_after
        if limit and self._imported_files >= limit:
            raise FatalJobError(f"the import stopped after {limit} files (injected fault)")
        started = time.monotonic()
        try:
            data = self._content(obj, content, archives)
            self._check_file(obj, data)
            drive_id, parent_id = self._parent(obj, placed)
            self.target.put_file(
                drive_id,
                parent_id,
                obj.id,
                obj.get("Name") or obj.url.rsplit("/", 1)[-1],
                data,
                parse_time(obj.get("TimeCreated")),
                parse_time(obj.get("TimeLastModified")),
                self._identity(obj.get("Author")),
                self._identity(obj.get("ModifiedBy")),
            )
        except (BlobProblem, ImportError_) as exc:
            self.log.problem("JobError", obj, exc.code, str(exc))
            return
        self._imported_files += 1
        self.log.file_imported(obj.url, len(data))
        self._pace(len(data), time.monotonic() - started)

    def _content(self, obj: PackageObject, content: ContainerClient, archives: Archives) -> bytes:
        """The file's plaintext: the member of its archive when ArchivedFiles.xml lists its
        `FileValue` (checked against `MD5Hash`, of these bytes then), else its blob (whose
        MD5 is of the stored bytes). Raises BlobProblem or ImportError_."""
        value = obj.get("FileValue")
        if not value:
            raise ImportError_("the File has no FileValue", code=E_ITEM)
        if not archives.holds(value):
            return read_blob(
                content,
                value,
                self.job.key,
                md5_hash=obj.get("MD5Hash"),
                iv_text=obj.get("InitializationVector"),
            )
        data = archives.read(value)
        md5_hash = obj.get("MD5Hash")
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode("ascii")  # noqa: S324
        if md5_hash and md5 != md5_hash:
            raise ImportError_("the archived file does not match its MD5Hash", code=E_ITEM)
        return data

    def _check_file(self, obj: PackageObject, data: bytes) -> None:
        size = obj.get("FileSize")
        if size and size.isdigit() and int(size) != len(data):
            raise ImportError_(
                f"the file has {len(data)} bytes, the manifest says {size}", code=E_ITEM
            )
        checksum = obj.get("Checksum")
        if checksum:
            hasher = QuickXorHash()
            hasher.update(data)
            if base64.b64encode(hasher.digest()).decode("ascii") != checksum:
                raise ImportError_("the file does not match its Checksum", code=E_ITEM)

    def _pace(self, size: int, spent: float) -> None:
        faults = self._faults
        wait = 0.0
        if faults.migration_bytes_per_s > 0:
            wait = max(wait, size / faults.migration_bytes_per_s)
        if faults.migration_files_per_s > 0:
            wait = max(wait, 1 / faults.migration_files_per_s)
        if wait > spent:
            time.sleep(wait - spent)
