"""The Migration API service of one emulated tenant: Azurite, provisioning, the job queue, and
the import worker, behind the calls that the REST layer (`rest.py`) answers.

The service starts lazily: the first call that needs storage starts Azurite and the import
threads (`settings.migration_api = "start"` does it at start-up). Its blocking calls are meant
for a worker thread, not the event loop.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from azure.storage.queue import QueueSasPermissions, QueueServiceClient, generate_queue_sas

from sharelift.emulator.migration.azurite import Azurite
from sharelift.emulator.migration.blobs import Storage
from sharelift.emulator.migration.crypto import new_key
from sharelift.emulator.migration.events import make_event, new_correlation_id
from sharelift.emulator.migration.jobs import Job, JobQueue, Provisioned
from sharelift.emulator.migration.sas import (
    CONTENT_PERMISSIONS,
    MANIFEST_PERMISSIONS,
    QUEUE_PERMISSIONS,
    SasError,
    SasUri,
    check_own,
    parse_sas_uri,
)
from sharelift.emulator.migration.target import ImportTarget
from sharelift.emulator.migration.worker import ImportWorker
from sharelift.emulator.settings import EmulatorSettings
from sharelift.errors import EmulatorError

CONTAINER_SAS_LIFETIME = dt.timedelta(days=3)
"""SharePoint-provided containers' SAS and key are valid three days (reference §3)."""
QUEUE_SAS_LIFETIME = dt.timedelta(days=21)


class JobRefused(ValueError):
    """CreateMigrationJob refuses the call; the message says why (no secret in it)."""


@dataclass(frozen=True)
class ProvisionedContainers:
    data_uri: str
    metadata_uri: str
    key: bytes


class MigrationService:
    """One tenant's Migration API. Thread-safe."""

    def __init__(
        self,
        settings: EmulatorSettings,
        server_cert: Path,
        server_key: Path,
        ca_file: Path,
        target_for_site: Callable[[str], ImportTarget | None],
    ) -> None:
        self.settings = settings
        folder = settings.data_dir / "migration"
        folder.mkdir(parents=True, exist_ok=True)
        self.azurite = Azurite(settings.data_dir, settings.tenant, server_cert, server_key)
        self.ca_file = str(ca_file)
        self.jobs = JobQueue(folder / "jobs", settings.migration_queue_limit)
        self.provisioned = Provisioned(folder / "provisioned.json")
        self._target_for_site = target_for_site
        self.worker = ImportWorker(
            self.jobs,
            self.storage,
            lambda job: target_for_site(job.site_id),
            settings.faults,
        )
        self._lock = threading.Lock()
        self._started = False
        self.on_started: list[Callable[[], None]] = []
        """Called once Azurite runs (the server rewrites emulator.json)."""

    # -- life cycle -----------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start Azurite and the import threads unless they run. Raises EmulatorError."""
        with self._lock:
            if self._started:
                return
            self.azurite.start()
            self.worker.start(self.settings.migration_import_threads)
            self._started = True
        for callback in self.on_started:
            callback()

    @property
    def started(self) -> bool:
        return self._started

    def stop(self) -> None:
        with self._lock:
            if self._started:
                self.worker.stop()
            self.azurite.stop()
            self._started = False

    def storage(self) -> Storage:
        return Storage(self.ca_file, self.azurite.connection_string())

    def info(self) -> dict[str, Any]:
        """The emulator.json `migration_api` object (endpoints only once Azurite runs)."""
        view: dict[str, Any] = {"mode": self.settings.migration_api, "running": self._started}
        if self._started:
            view |= {
                "blob_endpoint": self.azurite.blob_endpoint,
                "queue_endpoint": self.azurite.queue_endpoint,
                "account_name": self.azurite.account.name,
                "account_key": self.azurite.account.key,
            }
        return view

    # -- provisioning ---------------------------------------------------------------------

    def provision_containers(self) -> ProvisionedContainers:
        """Two new containers with Read+Write SAS (no List) and a fresh key."""
        self.ensure_started()
        account = self.azurite.account
        stem = uuid.uuid4().hex
        names = (f"spmigration-{stem}-data", f"spmigration-{stem}-meta")
        now = dt.datetime.now(dt.UTC)
        uris = []
        try:
            with BlobServiceClient.from_connection_string(
                self.azurite.connection_string(), connection_verify=self.ca_file
            ) as service:
                for name in names:
                    service.create_container(name)
                    sas = generate_container_sas(
                        account.name,
                        name,
                        account_key=account.key,
                        permission=ContainerSasPermissions(read=True, write=True),
                        start=now - dt.timedelta(minutes=5),
                        expiry=now + CONTAINER_SAS_LIFETIME,
                        protocol="https",
                    )
                    uris.append(f"{self.azurite.blob_endpoint}/{name}?{sas}")
        except AzureError as exc:
            raise EmulatorError(f"Azurite refused a container: {type(exc).__name__}") from exc
        self.provisioned.add_containers(*names)
        return ProvisionedContainers(uris[0], uris[1], new_key())

    def provision_queue(self) -> str:
        """A new queue whose SAS lets the service add and the caller read and delete."""
        self.ensure_started()
        account = self.azurite.account
        name = f"spmigration-{uuid.uuid4().hex}"
        now = dt.datetime.now(dt.UTC)
        try:
            with QueueServiceClient.from_connection_string(
                self.azurite.connection_string(), connection_verify=self.ca_file
            ) as service:
                service.create_queue(name)
        except AzureError as exc:
            raise EmulatorError(f"Azurite refused a queue: {type(exc).__name__}") from exc
        sas = generate_queue_sas(
            account.name,
            name,
            account.key,
            # Undocumented for provided queues: the service adds and updates, the caller reads
            # and deletes (process) its messages.
            permission=QueueSasPermissions(read=True, add=True, update=True, process=True),
            start=now - dt.timedelta(minutes=5),
            expiry=now + QUEUE_SAS_LIFETIME,
            protocol="https",
        )
        self.provisioned.add_queue(name)
        return f"{self.azurite.queue_endpoint}/{name}?{sas}"

    # -- jobs -----------------------------------------------------------------------------

    def _own_or_provided(self, sas: SasUri, kind: str) -> bool:
        return sas.account == self.azurite.account.name and (
            self.provisioned.is_queue(sas.name)
            if kind == "queue"
            else self.provisioned.is_container(sas.name)
        )

    def create_job(
        self,
        site_id: str,
        web_id: str,
        source_uri: object,
        manifest_uri: object,
        queue_uri: object,
        key: bytes | None,
    ) -> str:
        """Queue an import job; returns its id. Raises JobRefused or QueueFullError."""
        self.ensure_started()
        try:
            source = parse_sas_uri("azureContainerSourceUri", source_uri)
            manifest = parse_sas_uri("azureContainerManifestUri", manifest_uri)
            queue = (
                parse_sas_uri("azureQueueReportUri", queue_uri)
                if queue_uri not in (None, "")
                else None
            )
        except SasError as exc:
            raise JobRefused(str(exc)) from exc
        if source.base == manifest.base:
            raise JobRefused(
                "azureContainerManifestUri can't be the same container as azureContainerSourceUri"
            )
        provided = [self._own_or_provided(s, "container") for s in (source, manifest)]
        if any(provided) and not all(provided):
            raise JobRefused(
                "the containers must both be provided by ProvisionMigrationContainers, or both "
                "your own"
            )
        try:
            if all(provided):
                if key is None:
                    # migration-azure.md: "Migration API rejects migration jobs generated from
                    # unencrypted SharePoint-provided containers."
                    raise JobRefused(
                        "jobs from SharePoint-provided containers must be encrypted: use "
                        "CreateMigrationJobEncrypted"
                    )
            else:
                check_own("azureContainerSourceUri", source, CONTENT_PERMISSIONS)
                check_own("azureContainerManifestUri", manifest, MANIFEST_PERMISSIONS)
            queue_provided = queue is not None and self._own_or_provided(queue, "queue")
            if queue is not None and not queue_provided:
                check_own("azureQueueReportUri", queue, QUEUE_PERMISSIONS)
        except SasError as exc:
            raise JobRefused(str(exc)) from exc
        job = Job(
            id=str(uuid.uuid4()),
            site_id=site_id,
            web_id=web_id,
            source=source,
            manifest=manifest,
            queue=queue,
            provided=all(provided),
            queue_provided=queue_provided,
            correlation_id=new_correlation_id(),
            key=key,
        )
        self.jobs.check_room(site_id)
        if job.provided:
            used = self.provisioned.claim([source.name, manifest.name], job.id)
            if used is not None:
                raise JobRefused(f"the provided container {used} has already served a job")
        self.jobs.register(job)
        site_guid = site_id.split(",")[1]
        self.worker.emit(
            job,
            make_event("JobQueued", job.id, job.correlation_id, SiteId=site_guid, DbId=site_guid),
        )
        self.jobs.enqueue(job)
        return job.id
