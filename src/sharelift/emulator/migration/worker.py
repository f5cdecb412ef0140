"""The import worker: takes queued jobs and imports their packages as SharePoint's service does.

For each job, in order: JobStart (or JobPostponed first, when that fault is set); the manifest
container's files are read (latest snapshot, MD5, decryption) and the package checked
(`package.py`); the web and list ids must be the target's real ones (sp-dev-docs
`docs/apis/migration-manifest.md`, "Document Library/List ID consistency"). Anything wrong so
far is a JobFatalError and nothing is imported. Then folders and files are created with their
ids, times and authors; an item that cannot be imported (a missing blob, no snapshot, a bad
MD5 or padding, a wrong size or checksum, a name conflict) is a JobError and the rest of the
package is still imported. JobProgress is reported as the import goes, JobEnd closes the job
(after a JobFatalError too), and the logs are written into the manifest container.

Every event also goes to the job's Azure queue when it has one, encrypted for encrypted jobs.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient

from sharelift.emulator.migration.blobs import (
    BlobProblem,
    Storage,
    queue_message,
    read_blob,
    write_log,
)
from sharelift.emulator.migration.events import make_event
from sharelift.emulator.migration.jobs import STATE_QUEUED, Job, JobQueue
from sharelift.emulator.migration.package import (
    Package,
    PackageError,
    PackageObject,
    guid,
    parse_time,
    read_package,
)
from sharelift.emulator.migration.target import (
    Identity,
    ImportError_,
    ImportTarget,
    Library,
)
from sharelift.emulator.settings import Faults
from sharelift.quickxorhash import QuickXorHash

_log = logging.getLogger(__name__)
SYSTEM_ACCOUNT: Identity = {"user": {"displayName": "System Account"}}
PROGRESS_EVERY_S = 1.0
"""JobProgress comes at least this often while a job is imported."""
E_FATAL = -2147213196  # the HRESULT of migration-events.md's JobFatalError sample
E_WEB = -2147024809  # E_INVALIDARG
E_ITEM = -2147024816  # the HRESULT of migration-events.md's JobError sample


class FatalJobError(Exception):
    """The job stops here (JobFatalError)."""


@dataclass
class _Counters:
    files: int = 0
    bytes: int = 0
    objects: int = 0
    expected: int = 0
    errors: int = 0
    warnings: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    by_size: dict[str, dict[str, int]] = field(default_factory=dict)

    def fields(self) -> dict[str, object]:
        return {
            "FilesCreated": self.files,
            "BytesProcessed": self.bytes,
            "ObjectsProcessed": self.objects,
            "TotalExpectedSPObjects": self.expected,
            "TotalErrors": self.errors,
            "TotalWarnings": self.warnings,
            "WaitTimeOnSqlThrottlingMilliseconds": 0,
            "TotalDurationInMs": 0,
            "CpuDurationInMs": 0,
            "SqlDurationInMs": 0,
            "SqlQueryCount": 0,
            "CreatedOrUpdatedFileStatsBySize": self.by_size,
            "ObjectsStatsByType": {
                k: {"Count": n, "TotalTime": 0, "AccumulatedVersions": 0, "ObjectsWithVersions": 0}
                for k, n in self.by_type.items()
            },
            "TotalExpectedBytes": 0,
        }


def _size_bucket(size: int) -> str:
    for limit, label in ((1024, "0-1K"), (1024**2, "1K-1M"), (100 * 1024**2, "1M-100M")):
        if size < limit:
            return label
    return "100M+"


TargetFor = Callable[[Job], ImportTarget | None]


class ImportWorker:
    """Threads that take jobs from `queue` and import them into the tenant."""

    def __init__(
        self,
        queue: JobQueue,
        storage: Callable[[], Storage],
        target_for: TargetFor,
        faults: Faults,
    ) -> None:
        self.queue = queue
        self._storage = storage
        self._target_for = target_for
        self._faults = faults
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def start(self, threads: int = 2) -> None:
        for n in range(threads):
            thread = threading.Thread(target=self._run, name=f"migration-import-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.queue.close()
        for thread in self._threads:
            thread.join(10)
        self._threads.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            job = self.queue.take(timeout=0.5)
            if job is None:
                continue
            try:
                postponed = self._maybe_postpone(job)
                if not postponed:
                    _JobRun(self, job).run()
            except Exception:  # a bug must not kill the worker thread
                _log.exception("migration job %s failed", job.id)
                self.queue.finish(job)

    def _maybe_postpone(self, job: Job) -> bool:
        delay = self._faults.migration_postpone_s
        if delay <= 0 or job.postponed:
            return False
        job.postponed = True
        job.state = STATE_QUEUED  # waiting for its next pickup
        pickup = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        self.emit(
            job,
            make_event(
                "JobPostponed",
                job.id,
                job.correlation_id,
                NextPickupTime=pickup.strftime("%m/%d/%Y %H:%M:%S.")
                + f"{pickup.microsecond // 1000:03d}",
                SiteId=job.site_id.split(",")[1],
                DbId=job.site_id.split(",")[1],
                JobsInQueue=1,
                # "DB busy" (migration-api-whats-new.md, reasons); the field name is ours.
                Reason="JobInQueue:Resource:1",
            ),
        )
        timer = threading.Timer(delay, self.queue.requeue, args=(job,))
        timer.daemon = True
        timer.start()
        return True

    def emit(self, job: Job, event: dict[str, str]) -> None:
        """Append `event` to the job's log, and to its Azure queue if it has one."""
        log = self.queue.log(job.id)
        if log is not None:
            log.append(event)
        if job.queue is None:
            return
        try:
            client = self._storage().queue(job.queue, job.queue_provided)
            with client:
                client.send_message(queue_message(event, job.id, job.key))
        except (AzureError, ValueError) as exc:
            # "the migration job will be unable to add events to the queue" (reference).
            _log.info("job %s: queue write failed (%s)", job.id, type(exc).__name__)


class _JobRun:
    """One import of one job."""

    def __init__(self, worker: ImportWorker, job: Job) -> None:
        self.worker = worker
        self.job = job
        self.counters = _Counters()
        self.lines: list[tuple[str, str]] = []
        self._last_progress = time.monotonic()
        self._user_cache: dict[str, Identity] = {}
        self._imported_files = 0
        self._target: ImportTarget | None = None

    # -- events --------------------------------------------------------------------------

    def _emit(self, name: str, **fields: object) -> None:
        self.worker.emit(self.job, make_event(name, self.job.id, self.job.correlation_id, **fields))

    def _problem(self, name: str, obj: PackageObject | None, code: int, message: str) -> None:
        if name == "JobWarning":
            self.counters.warnings += 1
        else:
            self.counters.errors += 1
        object_type = obj.object_type.removeprefix("SP") if obj is not None else ""
        self.lines.append(("warning" if name == "JobWarning" else "error", message))
        self._emit(
            name,
            ObjectType=object_type,
            Url=obj.url if obj is not None else "",
            Id=obj.id if obj is not None else "",
            ErrorCode=code,
            ErrorType="Microsoft.SharePoint.SPException",
            Message=message,
        )

    def _progress(self, force: bool = False) -> None:
        if force or time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = time.monotonic()
            self._emit("JobProgress", **self.counters.fields())

    # -- the job -------------------------------------------------------------------------

    def run(self) -> None:
        job = self.job
        site_guid = job.site_id.split(",")[1]
        self._emit(
            "JobStart",
            SiteId=site_guid,
            WebId=job.web_id,
            DBId=site_guid,
            FarmId=site_guid,
            ServerId=site_guid,
            SubscriptionId=site_guid,
        )
        self.lines.append(("info", f"job {job.id} started"))
        manifest: ContainerClient | None = None
        try:
            storage = self.worker._storage()
            manifest = storage.container(job.manifest, job.provided)
            target = self.worker._target_for(job)
            if target is None:
                raise FatalJobError("the target site no longer exists")
            self._target = target
            package = self._read(manifest)
            libraries = self._check_ids(package, target)
            self._import(package, target, libraries, storage.container(job.source, job.provided))
        except FatalJobError as exc:
            self._problem("JobFatalError", None, E_FATAL, str(exc))
        if manifest is not None:
            self._write_logs(manifest)
            manifest.close()
        self._emit("JobEnd", **self._end_fields())
        self.worker.queue.finish(job)

    def _end_fields(self) -> dict[str, object]:
        return self.counters.fields() | {
            "FilesCreatedIrrespectiveOfVersions": self.counters.files,
            "BytesProcessedOnlyCurrentVersion": self.counters.bytes,
        }

    def _read(self, manifest: ContainerClient) -> Package:
        def fetch(name: str) -> bytes | None:
            try:
                data = read_blob(manifest, name, self.job.key)
            except BlobProblem as exc:
                if str(exc).endswith("does not exist"):
                    return None
                raise FatalJobError(str(exc)) from exc
            if self.job.key is not None and not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(
                b"<"
            ):
                # A wrong key passes PKCS7's padding check now and then (a last byte of 0x01
                # one time in 256): what comes out is noise, not a manifest.
                raise FatalJobError(f"blob '{name}' cannot be decrypted: the result is not XML")
            return data

        try:
            package = read_package(fetch)
        except PackageError as exc:
            raise FatalJobError(str(exc)) from exc
        for warning in package.warnings:
            self._problem("JobWarning", None, 0, warning)
        self.counters.expected = len(package.objects)
        self._progress(force=True)
        return package

    def _check_ids(self, package: Package, target: ImportTarget) -> dict[str, Library]:
        """The libraries the package names, all in the target web; raises FatalJobError."""
        if self.job.web_id != target.web_id:
            raise FatalJobError(f"the web {self.job.web_id} is not in this site collection")
        list_ids = {list_id for list_id, _ in package.root_lists}
        for _list_id, web_id in package.root_lists:
            if web_id != target.web_id:
                raise FatalJobError(f"RootObjectMap.xml: the web {web_id} is not the target web")
        for obj in package.objects:
            web = guid(obj.get("ParentWebId")) if obj.get("ParentWebId") else target.web_id
            if web != target.web_id:
                raise FatalJobError(
                    f"{obj.manifest}: cannot find the parent web {obj.get('ParentWebId')} of "
                    f"{obj.object_type} {obj.id}"
                )
            if obj.object_type == "SPDocumentLibrary":
                list_ids.add(obj.id)
            for attr in ("ListId", "ContainingDocumentLibrary", "ParentListId"):
                if obj.get(attr):
                    list_ids.add(guid(obj.get(attr)) or obj.get(attr))
        libraries = {}
        for list_id in list_ids:
            library = target.library(list_id)
            if library is None:
                raise FatalJobError(f"the list {list_id} is not a library of the target web")
            libraries[list_id] = library
        return libraries

    # -- importing -----------------------------------------------------------------------

    def _import(
        self,
        package: Package,
        target: ImportTarget,
        libraries: dict[str, Library],
        content: ContainerClient,
    ) -> None:
        placed: dict[str, tuple[str, str]] = {}
        """Unique id -> (drive id, item id) of the folders known so far."""
        for library in libraries.values():
            placed[library.root_guid] = (library.drive_id, library.root_item_id)
        with content:
            for obj in package.objects:
                self.counters.by_type[obj.object_type] = (
                    self.counters.by_type.get(obj.object_type, 0) + 1
                )
                if obj.object_type == "SPFolder" and obj.id not in placed:
                    self._folder(obj, package, target, placed)
                elif obj.object_type == "SPFile":
                    self._file(obj, package, target, placed, content)
                self.counters.objects += 1
                self._progress()

    def _parent(
        self, obj: PackageObject, target: ImportTarget, placed: dict[str, tuple[str, str]]
    ) -> tuple[str, str]:
        parent = guid(obj.get("ParentFolderId") or obj.get("ParentId")) or ""
        if parent in placed:
            return placed[parent]
        found = target.find(parent)
        if found is None or not found.is_folder:
            raise ImportError_(f"the parent folder {parent} does not exist", code=-2147024893)
        placed[parent] = (found.drive_id, found.item_id)
        return placed[parent]

    def _identity(self, package: Package, user_id: str) -> Identity:
        if not user_id:
            return SYSTEM_ACCOUNT
        if user_id in self._user_cache:
            return self._user_cache[user_id]
        user = package.users.get(user_id)
        identity = SYSTEM_ACCOUNT
        if user is not None:
            found = self._target.user(user.upn) if self._target is not None else None
            if found is not None:
                identity = found
            elif user.system_id:
                # "creates a new deleted User with the provided Sign-in and SystemId"
                identity = {"user": {"displayName": user.name or user.login, "email": user.email}}
                self._problem(
                    "JobWarning",
                    None,
                    0,
                    f"Failed to retrieve user '{user.login}' attributes from the SiteUsers; "
                    "falling back to passed in values",
                )
            else:
                self._problem("JobWarning", None, 0, f"Failed to ensure user '{user.login}'")
        self._user_cache[user_id] = identity
        return identity

    def _folder(
        self,
        obj: PackageObject,
        package: Package,
        target: ImportTarget,
        placed: dict[str, tuple[str, str]],
    ) -> None:
        try:
            drive_id, parent_id = self._parent(obj, target, placed)
            name = obj.get("Name") or obj.url.rstrip("/").rsplit("/", 1)[-1]
            item_id = target.put_folder(
                drive_id,
                parent_id,
                obj.id,
                name,
                parse_time(obj.get("TimeCreated")),
                parse_time(obj.get("TimeLastModified")),
                self._identity(package, obj.get("Author")),
                self._identity(package, obj.get("ModifiedBy")),
            )
        except ImportError_ as exc:
            self._problem("JobError", obj, exc.code, str(exc))
            return
        placed[obj.id] = (drive_id, item_id)

    def _file(
        self,
        obj: PackageObject,
        package: Package,
        target: ImportTarget,
        placed: dict[str, tuple[str, str]],
        content: ContainerClient,
    ) -> None:
        limit = self.worker._faults.migration_fail_after
        if limit and self._imported_files >= limit:
            raise FatalJobError(f"the import stopped after {limit} files (injected fault)")
        started = time.monotonic()
        try:
            blob = obj.get("FileValue")
            if not blob:
                raise ImportError_("the File has no FileValue", code=E_ITEM)
            data = read_blob(
                content,
                blob,
                self.job.key,
                md5_hash=obj.get("MD5Hash"),
                iv_text=obj.get("InitializationVector"),
            )
            self._check_file(obj, data)
            drive_id, parent_id = self._parent(obj, target, placed)
            target.put_file(
                drive_id,
                parent_id,
                obj.id,
                obj.get("Name") or obj.url.rsplit("/", 1)[-1],
                data,
                parse_time(obj.get("TimeCreated")),
                parse_time(obj.get("TimeLastModified")),
                self._identity(package, obj.get("Author")),
                self._identity(package, obj.get("ModifiedBy")),
            )
        except (BlobProblem, ImportError_) as exc:
            self._problem("JobError", obj, exc.code, str(exc))
            return
        self._imported_files += 1
        self.lines.append(("info", f"imported file {obj.url} ({len(data)} bytes)"))
        self.counters.files += 1
        self.counters.bytes += len(data)
        bucket = self.counters.by_size.setdefault(
            _size_bucket(len(data)),
            {"Count": 0, "TotalSize": 0, "TotalDownloadTime": 0, "TotalCreationTime": 0},
        )
        bucket["Count"] += 1
        bucket["TotalSize"] += len(data)
        self._pace(len(data), time.monotonic() - started)

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
        faults = self.worker._faults
        wait = 0.0
        if faults.migration_bytes_per_s > 0:
            wait = max(wait, size / faults.migration_bytes_per_s)
        if faults.migration_files_per_s > 0:
            wait = max(wait, 1 / faults.migration_files_per_s)
        if wait > spent:
            time.sleep(wait - spent)

    # -- logs ----------------------------------------------------------------------------

    def _write_logs(self, manifest: ContainerClient) -> None:
        """The full, warnings-only and errors-only logs, named with the job id and a time
        stamp (migration-api-overview.md, "Logging"); the name pattern is ours."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
        base = f"Import-{self.job.id}-{stamp}"

        def text(levels: set[str]) -> str:
            return "".join(f"{lvl}\t{msg}\n" for lvl, msg in self.lines if lvl in levels)

        logs = {
            f"{base}.log": {"info", "warning", "error"},
            f"{base}.wrn": {"warning"},
            f"{base}.err": {"error"},
        }
        for name, levels in logs.items():
            try:
                write_log(manifest, name, text(levels), self.job.key)
            except AzureError as exc:
                _log.info("job %s: cannot write its logs (%s)", self.job.id, type(exc).__name__)
                return
            # Deprecated but documented (migration-events.md): it names the log, which a
            # caller holding a provided container's SAS (no List) could not find otherwise.
            self._emit("JobLogFileCreate", FileName=name)
