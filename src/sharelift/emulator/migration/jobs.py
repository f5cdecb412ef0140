"""Migration jobs: the record of each, the import queue, and the containers SharePoint handed out.

A job is queued by CreateMigrationJob[Encrypted] and taken by the import worker in order. The
service keeps at most `limit` jobs *queued* per site collection (processing ones do not count;
the sp-dev-docs performance guidance says to keep under 5,000). `GetMigrationJobStatus` answers
from here: Queued (2), Processing (4), or None (0) once the job has left the queue.

The job's encryption key stays in memory only, and is dropped when the job ends: SharePoint
"destroys the key once the migration job is finished" (`migration-api-encryption.md`). Job
records (without keys) and event logs are kept under `data_dir/migration/jobs/`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from sharelift.emulator.certs import write_private
from sharelift.emulator.migration.events import EventLog
from sharelift.emulator.migration.sas import SasUri

STATE_NONE, STATE_QUEUED, STATE_PROCESSING = 0, 2, 4
"""SPMigrationJobState (migration-api-reference.md)."""


class QueueFullError(Exception):
    """The site collection already has `limit` queued jobs."""


@dataclass
class Job:
    """One import job as the service sees it."""

    id: str
    site_id: str
    """The store's site id (`host,siteGuid,webGuid`)."""
    web_id: str
    source: SasUri
    manifest: SasUri
    queue: SasUri | None
    provided: bool
    """The containers were handed out by ProvisionMigrationContainers."""
    queue_provided: bool
    """The queue was handed out by ProvisionMigrationQueue."""
    correlation_id: str
    key: bytes | None = field(default=None, repr=False)
    state: int = STATE_QUEUED
    postponed: bool = False
    created: float = field(default_factory=time.time)

    @property
    def encrypted(self) -> bool:
        return self.key is not None

    def record(self) -> dict[str, object]:
        """What is written to disk: no key, no SAS signature."""
        return {
            "id": self.id,
            "site_id": self.site_id,
            "web_id": self.web_id,
            "source": self.source.base,
            "manifest": self.manifest.base,
            "encrypted": self.encrypted,
            "created": self.created,
        }


class JobQueue:
    """Jobs by id, the FIFO of queued ones, and their event logs."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.limit = limit
        self._jobs: dict[str, Job] = {}
        self._logs: dict[str, EventLog] = {}
        self._queued: deque[str] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def check_room(self, site_id: str) -> None:
        """Raise QueueFullError when `site_id` has `limit` queued jobs already."""
        with self._cond:
            waiting = sum(1 for j in self._queued if self._jobs[j].site_id == site_id)
        if waiting >= self.limit:
            raise QueueFullError(f"{waiting} jobs are already queued for this site collection")

    def register(self, job: Job) -> EventLog:
        """Record `job` and open its event log, not yet queued (so that its first event can be
        written before a worker takes it). Raises QueueFullError."""
        self.check_room(job.site_id)
        with self._cond:
            self._jobs[job.id] = job
            log = EventLog(self.folder / f"{job.id}.events.jsonl")
            self._logs[job.id] = log
            # Replaced whole (readers never see half a record), private as the folder's rest.
            write_private(self.folder / f"{job.id}.json", json.dumps(job.record()).encode())
            return log

    def enqueue(self, job: Job) -> None:
        """Queue a registered job for the workers."""
        with self._cond:
            self._queued.append(job.id)
            self._cond.notify()

    def requeue(self, job: Job) -> None:
        """Put a postponed job back at the end of the queue."""
        with self._cond:
            job.state = STATE_QUEUED
            self._queued.append(job.id)
            self._cond.notify()

    def take(self, timeout: float) -> Job | None:
        """The next queued job, now Processing; None after `timeout` or once closed."""
        with self._cond:
            deadline = time.monotonic() + timeout
            while not self._queued and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            if self._closed:
                return None
            job = self._jobs[self._queued.popleft()]
            job.state = STATE_PROCESSING
            return job

    def finish(self, job: Job) -> None:
        """The job left the queue: its status is None (0) from now on; its key is dropped."""
        with self._cond:
            job.state = STATE_NONE
            job.key = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def job(self, job_id: str) -> Job | None:
        with self._cond:
            return self._jobs.get(job_id)

    def status(self, job_id: str) -> int:
        job = self.job(job_id)
        return job.state if job is not None else STATE_NONE

    def log(self, job_id: str) -> EventLog | None:
        """The job's event log, also for jobs of an earlier run of the emulator."""
        with self._cond:
            log = self._logs.get(job_id)
            if log is None:
                path = self.folder / f"{job_id}.events.jsonl"
                if path.exists():
                    log = self._logs[job_id] = EventLog(path)
            return log

    def site_of(self, job_id: str) -> str | None:
        """The site collection a job (of this run or an earlier one) was created for."""
        job = self.job(job_id)
        if job is not None:
            return job.site_id
        path = self.folder / f"{job_id}.json"
        try:
            return str(json.loads(path.read_text("utf-8"))["site_id"])
        except (OSError, ValueError, KeyError):
            return None


class Provisioned:
    """Containers and queues handed out by ProvisionMigrationContainers / ProvisionMigrationQueue.

    A provided container serves one job only (migration-azure.md: "uses a container exclusively
    once"); a provided queue may be shared by many jobs. Kept in `path` across restarts.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._containers: dict[str, str | None] = {}
        self._queues: set[str] = set()
        if path.exists():
            raw = json.loads(path.read_text("utf-8"))
            self._containers = dict(raw.get("containers", {}))
            self._queues = set(raw.get("queues", []))

    def _save(self) -> None:
        data = {"containers": self._containers, "queues": sorted(self._queues)}
        write_private(self._path, json.dumps(data).encode())

    def add_containers(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._containers[name] = None
            self._save()

    def add_queue(self, name: str) -> None:
        with self._lock:
            self._queues.add(name)
            self._save()

    def is_container(self, name: str) -> bool:
        with self._lock:
            return name in self._containers

    def is_queue(self, name: str) -> bool:
        with self._lock:
            return name in self._queues

    def claim(self, names: list[str], job_id: str) -> str | None:
        """Mark provided containers as used by `job_id`; the name of one already used, if any."""
        with self._lock:
            for name in names:
                if self._containers.get(name) is not None:
                    return name
            for name in names:
                self._containers[name] = job_id
            self._save()
            return None
