"""What one import says of itself: its counters, its events, and the logs it leaves.

`JobLog` sends a job's events (through `ImportWorker.emit`: the job's event log, and its Azure
queue when it has one), counts its errors and warnings, paces JobProgress (at least every
`PROGRESS_EVERY_S` while objects are imported) and keeps the log lines that `write_logs` puts
into the manifest container when the job ends. The statistics' field names follow sp-dev-docs
`docs/apis/migration-events.md` (JobProgress and JobEnd).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from azure.core.exceptions import AzureError
from azure.storage.blob import ContainerClient

from sharelift.emulator.migration.blobs import write_log
from sharelift.emulator.migration.events import make_event
from sharelift.emulator.migration.jobs import Job
from sharelift.emulator.migration.package import PackageObject

_log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0
"""JobProgress comes at least this often while a job is imported."""

Emit = Callable[[Job, dict[str, str]], None]


class FatalJobError(Exception):
    """The job stops here (JobFatalError)."""


@dataclass
class Counters:
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


class JobLog:
    """The events, counters and log lines of one import of `job` (see the module docstring)."""

    def __init__(self, job: Job, emit: Emit) -> None:
        self.job = job
        self._emit_to = emit
        self.counters = Counters()
        self.lines: list[tuple[str, str]] = []
        self._last_progress = time.monotonic()

    def emit(self, name: str, **fields: object) -> None:
        self._emit_to(self.job, make_event(name, self.job.id, self.job.correlation_id, **fields))

    def note(self, message: str) -> None:
        """An information line of the full log (no event)."""
        self.lines.append(("info", message))

    def problem(self, name: str, obj: PackageObject | None, code: int, message: str) -> None:
        """A JobWarning, JobError or JobFatalError about `obj` (None: the job itself)."""
        if name == "JobWarning":
            self.counters.warnings += 1
        else:
            self.counters.errors += 1
        object_type = obj.object_type.removeprefix("SP") if obj is not None else ""
        self.lines.append(("warning" if name == "JobWarning" else "error", message))
        self.emit(
            name,
            ObjectType=object_type,
            Url=obj.url if obj is not None else "",
            Id=obj.id if obj is not None else "",
            ErrorCode=code,
            ErrorType="Microsoft.SharePoint.SPException",
            Message=message,
        )

    def progress(self, force: bool = False) -> None:
        if force or time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = time.monotonic()
            self.emit("JobProgress", **self.counters.fields())

    def file_imported(self, url: str, size: int) -> None:
        self.note(f"imported file {url} ({size} bytes)")
        self.counters.files += 1
        self.counters.bytes += size
        bucket = self.counters.by_size.setdefault(
            _size_bucket(size),
            {"Count": 0, "TotalSize": 0, "TotalDownloadTime": 0, "TotalCreationTime": 0},
        )
        bucket["Count"] += 1
        bucket["TotalSize"] += size

    def end_fields(self) -> dict[str, object]:
        return self.counters.fields() | {
            "FilesCreatedIrrespectiveOfVersions": self.counters.files,
            "BytesProcessedOnlyCurrentVersion": self.counters.bytes,
        }

    def write_logs(self, manifest: ContainerClient) -> None:
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
            self.emit("JobLogFileCreate", FileName=name)
