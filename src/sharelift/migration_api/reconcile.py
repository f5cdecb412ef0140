"""What an import job did to each file: its events and logs mapped to files, then every file
looked up through Graph and checked against the hash of the bytes packaged.

Events (sp-dev-docs `docs/apis/migration-events.md`): `JobError` and `JobWarning` name the
object they concern by `Id` (the id the manifest gave it) and `Url`; `JobFatalError` stops
the whole package; `JobEnd` (or `JobCancelled`, `JobDeleted`) is the last one. A file with a
JobError is failed with the service's code and message; a warning is kept with the package.
The events also say where the job stands (`ServiceJob`: queued, postponed, processing, done or
failed) and what it imported; the errors and warnings are handed to the store with their
messages (`JobReport.new_problems`).

The logs (SPD-2023 "Logging"; the emulator names them in `JobLogFileCreate` events, a caller
whose SAS cannot list the container has no other way to find them) are read once the job has
ended: an error line naming a file the events did not fail fails it too.

Then the proof (DESIGN.md invariant 2): a file is `done` only when Graph shows it at its path
with the quickXorHash of the bytes that were packaged. Each folder holding files of the package
is listed once (`list_children`), not one request per file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sharelift.graph.drive import DriveClient
from sharelift.graph.types import DriveItem
from sharelift.migration_api.jobs import TERMINAL_EVENTS
from sharelift.state import PackageEventRecord, ServiceJob, ServiceJobState
from sharelift.state.records import utcnow

JOB_ERROR = "MIGRATION_JOB_ERROR"
JOB_FATAL = "MIGRATION_JOB_FATAL"
NOT_IMPORTED = "MIGRATION_NOT_IMPORTED"
PROBLEMS = ("JobError", "JobWarning", "JobFatalError")
_STATE_AFTER = {
    "JobQueued": ServiceJobState.QUEUED,
    "JobPostponed": ServiceJobState.POSTPONED,
    "JobStart": ServiceJobState.PROCESSING,
    "JobProgress": ServiceJobState.PROCESSING,
    "JobEnd": ServiceJobState.DONE,
    "JobFatalError": ServiceJobState.FAILED,
    "JobCancelled": ServiceJobState.FAILED,
    "JobDeleted": ServiceJobState.FAILED,
}
"""Where a job stands after an event (others, JobError and JobWarning among them, say it is
importing)."""
_EVENT_TIME = "%m/%d/%Y %H:%M:%S.%f"


def event_time(event: dict[str, str]) -> str:
    """An event's `Time` (`MM/dd/yyyy HH:mm:ss.fff`, UTC: the documents' samples carry no
    zone) as the store's ISO text; now when it is missing or malformed (the documents'
    samples hold some that are)."""
    try:
        moment = datetime.strptime(event.get("Time", ""), _EVENT_TIME).replace(tzinfo=UTC)
    except ValueError:
        return utcnow()
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _count(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


@dataclass
class JobReport:
    """What a job's events said so far."""

    errors: dict[str, str] = field(default_factory=dict)
    """Messages of JobError events, by object id (lower case) or URL (lower case)."""
    warnings: list[str] = field(default_factory=list)
    fatal: str | None = None
    ended: bool = False
    log_files: list[str] = field(default_factory=list)
    error_count: int = 0
    warning_count: int = 0
    files_created: int | None = None
    job: ServiceJob | None = None
    """Where the service's job stands after the last event taken (None before the first)."""
    new_problems: list[PackageEventRecord] = field(default_factory=list)
    """The errors and warnings taken since the caller last emptied this list (for the
    store), with `package_row` 0."""
    _seen: set[bytes] = field(default_factory=set, repr=False)
    """Fingerprints of the events taken."""

    def take(self, event: dict[str, str]) -> None:
        """Take one event; an event taken already (read from the job's progress and from its
        queue) counts once."""
        seen = hashlib.sha1(
            json.dumps(sorted(event.items())).encode(), usedforsecurity=False
        ).digest()
        if seen in self._seen:
            return
        self._seen.add(seen)
        kind = event.get("Event", "")
        self._follow(kind, event)
        if kind in PROBLEMS:
            text = (event.get("Message") or "").strip()
            code = event.get("ErrorCode") or ""
            message = f"{text} (error {code})" if code and code != "0" else text
            self.new_problems.append(
                PackageEventRecord(0, kind, event_time(event), code, event.get("Url") or "", text)
            )
            if kind == "JobError":
                self.error_count += 1
                for key in (event.get("Id"), event.get("Url")):
                    if key:
                        self.errors.setdefault(key.strip("{}").lower(), message)
            elif kind == "JobWarning":
                self.warning_count += 1
                if len(self.warnings) < 100:
                    self.warnings.append(message)
            else:
                self.fatal = self.fatal or message or "the job failed"
        elif kind == "JobLogFileCreate" and event.get("FileName"):
            self.log_files.append(event["FileName"])
        elif kind == "JobEnd" and event.get("FilesCreated", "").isdigit():
            self.files_created = int(event["FilesCreated"])
        if kind in TERMINAL_EVENTS:
            self.ended = True

    def _follow(self, kind: str, event: dict[str, str]) -> None:
        """Where the job stands after this event, and what it imported."""
        before = self.job
        state = _STATE_AFTER.get(kind, ServiceJobState.PROCESSING)
        failed = before is not None and before.state is ServiceJobState.FAILED
        if self.fatal is not None or failed:
            state = ServiceJobState.FAILED  # a JobEnd after a JobFatalError ends a failed job
        files = _count(event.get("FilesCreated"))
        size = _count(event.get("BytesProcessed"))
        self.job = ServiceJob(
            state=state,
            last_event=kind,
            last_event_at=event_time(event),
            files_imported=files if files is not None else before.files_imported if before else 0,
            bytes_imported=size if size is not None else before.bytes_imported if before else 0,
        )

    def lost(self, why: str) -> None:
        """The service no longer knows the job (or its status expired): it ends, failed."""
        self.fatal = self.fatal or why
        self.ended = True
        before = self.job
        self.job = ServiceJob(
            ServiceJobState.FAILED,
            before.last_event if before else "",
            before.last_event_at if before else utcnow(),
            before.files_imported if before else 0,
            before.bytes_imported if before else 0,
        )

    def error_for(self, file_id: str, url: str, server_url: str) -> str | None:
        """The JobError message for a file, by its id or its URL (either form)."""
        for key in (file_id, url, server_url, server_url.lstrip("/")):
            found = self.errors.get(key.lower())
            if found is not None:
                return found
        return None

    def take_log(self, text: str, files: Iterable[tuple[str, str]]) -> None:
        """An error log (`.err`): each line naming a file (by id or URL) that no event failed
        fails it."""
        wanted = [(fid.lower(), url.lower()) for fid, url in files]
        for line in text.splitlines():
            lowered = line.lower()
            message = line.split("\t", 1)[-1].strip()
            for fid, url in wanted:
                if (fid in lowered or url in lowered) and fid not in self.errors:
                    self.errors[fid] = message


async def list_folders(
    drive: DriveClient, folder_ids: Iterable[str]
) -> dict[tuple[str, str], DriveItem]:
    """What each folder holds now, by (folder driveItem id, lower-cased name): one listing per
    folder (paged), whatever the number of files."""
    found: dict[tuple[str, str], DriveItem] = {}
    for folder in set(folder_ids):
        async for item in drive.list_children(folder):
            if item.name:
                found[(folder, item.name.lower())] = item
    return found
