"""What an import job did to each file: its events and logs mapped to files, then every file
looked up through Graph and checked against the hash of the bytes packaged.

Events (sp-dev-docs `docs/apis/migration-events.md`): `JobError` and `JobWarning` name the
object they concern by `Id` (the id the manifest gave it) and `Url`; `JobFatalError` stops
the whole package; `JobEnd` (or `JobCancelled`, `JobDeleted`) is the last one. A file with a
JobError is failed with the service's code and message; a warning is kept with the package.

The logs (SPD-2023 "Logging"; the emulator names them in `JobLogFileCreate` events, a caller
whose SAS cannot list the container has no other way to find them) are read once the job has
ended: an error line naming a file the events did not fail fails it too.

Then the proof (DESIGN.md invariant 2): a file is `done` only when Graph shows it at its path
with the quickXorHash of the bytes that were packaged. Each folder holding files of the package
is listed once (`list_children`), not one request per file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sharelift.graph.drive import DriveClient
from sharelift.graph.types import DriveItem
from sharelift.migration_api.jobs import TERMINAL_EVENTS

JOB_ERROR = "MIGRATION_JOB_ERROR"
JOB_FATAL = "MIGRATION_JOB_FATAL"
NOT_IMPORTED = "MIGRATION_NOT_IMPORTED"


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

    def take(self, event: dict[str, str]) -> None:
        kind = event.get("Event", "")
        if kind in ("JobError", "JobWarning", "JobFatalError"):
            text = (event.get("Message") or "").strip()
            code = event.get("ErrorCode") or ""
            message = f"{text} (error {code})" if code and code != "0" else text
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
