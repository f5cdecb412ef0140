"""The import worker: takes queued jobs and imports their packages as SharePoint's service does.

For each job, in order: JobStart (or JobPostponed first, when that fault is set); the manifest
container's files are read (latest snapshot, MD5, decryption) and the package checked
(`package.py`); the web and list ids must be the target's real ones (sp-dev-docs
`docs/apis/migration-manifest.md`, "Document Library/List ID consistency"). Anything wrong so
far is a JobFatalError and nothing is imported. Then `PackageImport` (`importer.py`) creates
the folders and files with their ids, times and authors; an item that cannot be imported is a
JobError and the rest of the package is still imported. JobProgress is reported as the import
goes, JobEnd closes the job (after a JobFatalError too), and the logs are written into the
manifest container (`JobLog`, `joblog.py`).

Every event also goes to the job's Azure queue when it has one, encrypted for encrypted jobs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient

from sharelift.emulator.migration.blobs import BlobProblem, Storage, queue_message, read_blob
from sharelift.emulator.migration.events import make_event
from sharelift.emulator.migration.importer import PackageImport
from sharelift.emulator.migration.joblog import FatalJobError, JobLog
from sharelift.emulator.migration.jobs import STATE_QUEUED, Job, JobQueue
from sharelift.emulator.migration.package import Package, PackageError, guid, read_package
from sharelift.emulator.migration.target import ImportTarget, Library
from sharelift.emulator.settings import Faults

_log = logging.getLogger(__name__)
E_FATAL = -2147213196  # the HRESULT of migration-events.md's JobFatalError sample
E_WEB = -2147024809  # E_INVALIDARG


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
    """One import of one job: the package read and checked here, then applied by
    `PackageImport` (`importer.py`); its events and logs go through `JobLog` (`joblog.py`)."""

    def __init__(self, worker: ImportWorker, job: Job) -> None:
        self.worker = worker
        self.job = job
        self.log = JobLog(job, worker.emit)

    def run(self) -> None:
        job, log = self.job, self.log
        site_guid = job.site_id.split(",")[1]
        log.emit(
            "JobStart",
            SiteId=site_guid,
            WebId=job.web_id,
            DBId=site_guid,
            FarmId=site_guid,
            ServerId=site_guid,
            SubscriptionId=site_guid,
        )
        log.note(f"job {job.id} started")
        manifest: ContainerClient | None = None
        try:
            storage = self.worker._storage()
            manifest = storage.container(job.manifest, job.provided)
            target = self.worker._target_for(job)
            if target is None:
                raise FatalJobError("the target site no longer exists")
            package = self._read(manifest)
            libraries = self._check_ids(package, target)
            PackageImport(job, package, target, log, self.worker._faults).run(
                libraries, storage.container(job.source, job.provided)
            )
        except FatalJobError as exc:
            log.problem("JobFatalError", None, E_FATAL, str(exc))
        if manifest is not None:
            log.write_logs(manifest)
            manifest.close()
        log.emit("JobEnd", **log.end_fields())
        self.worker.queue.finish(job)

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
            self.log.problem("JobWarning", None, 0, warning)
        self.log.counters.expected = len(package.objects)
        self.log.progress(force=True)
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
