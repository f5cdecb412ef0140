"""SPMT and Migration Manager job files: CSV and JSON, read and validated before anything runs.

CSV (SPMT's bulk format, also what Migration Manager imports), header row optional:

    Source, Source DocLib, Source SubFolder, Target Web, Target DocLib, Target SubFolder
    [, RegisterAsHubSite, AssociateWithHubURL [, Agent Group]]

`Agent Group` (JSON: a task's `AgentGroup`), as Migration Manager's agent groups, names the
group of cluster workers that takes the row's job (`sharelift migrate --broker`); elsewhere it
is ignored.

JSON (SPMT's bulk format): `{"Tasks": [{"SourcePath", "TargetPath", "TargetList",
"TargetListRelativePath", "Settings": {...}}]}`; the task's settings that apply to a file share
become scan options, the ones that cannot apply are accepted and listed in `Job.ignored`, and an
unknown one is a row error naming it. An ignored setting that asks for something sharelift does
not do (permissions, user mapping, versions, OneNote notebooks) is a warning on its row,
`Job.warnings`, which bulk runs and pre-flights show, so that nobody believes it was done.

`load_job_file` checks every row first: each bad row becomes a `RowError` naming file, row and
column; a duplicate of an earlier row is one too; the valid rows are returned as `Job`s
(`strict=True` raises ConfigError instead when any row is bad). Sources written on Windows
(`C:\\...`, `\\\\server\\share\\...`) are mapped to local folders with a `SourceMap` when not on
Windows. Reading a job file never touches the network.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import ntpath
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sharelift.errors import ConfigError, ShareliftError, UsageError
from sharelift.source.walk import ScanOptions
from sharelift.target import TargetSpec, site_triple

CSV_COLUMNS = (
    "Source",
    "Source DocLib",
    "Source SubFolder",
    "Target Web",
    "Target DocLib",
    "Target SubFolder",
    "RegisterAsHubSite",
    "AssociateWithHubURL",
    "Agent Group",
)
_TASK_KEYS = (
    "SourcePath",
    "TargetPath",
    "TargetList",
    "TargetListRelativePath",
    "Settings",
    "AgentGroup",
)

# SPMT task settings that change what a file-share migration reads, as scan options.
_MAPPED_SETTINGS = (
    "MigrateHiddenItems",
    "MigrateItemsCreatedAfter",
    "MigrateItemsModifiedAfter",
    "SkipFilesWithExtensions",
)
# SPMT settings that are valid in a job file but have nothing to act on for a file share run by
# sharelift (every run is incremental; permissions, versions and user mapping are not migrated).
_IGNORED_SETTINGS = frozenset(
    {
        "EnableIncremental",
        "PreservePermission",
        "UserMappingCSVFile",
        "MigrateFileVersionHistory",
        "KeepAllVersions",
        "NumberOfVersionToMigrate",
        "AzureActiveDirectoryLookup",
        "StartMigrationAutomaticallyWhenNoScanIssue",
        "MigrateOneNoteFolderAsOneNoteNoteBook",
        "MigrateOneNoteNotebook",
        "SkipListWithAudienceTargetingEnabled",
        "MigrateSiteFeature",
        "MigrateNavigation",
        "MigrateHubSites",
    }
)

# What an ignored setting asked for that is not done, when its value asks for it.
_NOT_DONE = {
    "PreservePermission": "permissions are not migrated (items take the target's permissions)",
    "UserMappingCSVFile": "no user mapping is applied (permissions and authors are not migrated)",
    "AzureActiveDirectoryLookup": "no user lookup is made (permissions and authors are not "
    "migrated)",
    "MigrateFileVersionHistory": "only the current version of each file is migrated",
    "KeepAllVersions": "only the current version of each file is migrated",
    "NumberOfVersionToMigrate": "only the current version of each file is migrated",
    "MigrateOneNoteFolderAsOneNoteNoteBook": "OneNote folders are migrated as folders of files",
    "MigrateOneNoteNotebook": "OneNote folders are migrated as folders of files",
}

_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\|//)")


@dataclass(frozen=True)
class RowError:
    """One problem with one row: where, and what."""

    file: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: row {self.row}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Job:
    """One valid row: a source folder on this machine and a parsed target.

    `source_text` is the source as the file wrote it; `options` are the scan-option fields this
    row sets (to apply over the command line's with `dataclasses.replace`); `personal_path` is
    the OneDrive's server-relative path (`/personal/megan_contoso_com`) when the target is a
    OneDrive, else "".
    """

    file: str
    row: int
    source: str
    source_text: str
    target: TargetSpec
    options: Mapping[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()
    personal_path: str = ""
    group: str = ""
    """The group of cluster workers the row names (its Agent Group), or ""."""
    warnings: tuple[str, ...] = ()
    """`Setting: what is not done`, for each ignored setting whose value asks for something
    sharelift does not do (`PreservePermission: true`)."""

    @property
    def name(self) -> str:
        """`jobs.csv#12`: file and row, as reports and `sharelift status` name the job."""
        return f"{self.file}#{self.row}"

    def scan_options(self, base: ScanOptions) -> ScanOptions:
        from dataclasses import replace

        return replace(base, **dict(self.options))


@dataclass
class JobFile:
    """The valid jobs of a job file and the errors of the rows that are not."""

    path: Path
    jobs: list[Job]
    errors: list[RowError]


class SourceMap:
    """Maps sources written on Windows to where the shares are mounted here.

    Entries are `WINDOWS_PREFIX=LOCAL_FOLDER` (`\\\\fs01\\dept=/mnt/fs01/dept`); the longest
    matching prefix wins, compared case-insensitively and with `/` and `\\` alike, on whole path
    segments. On Windows an unmapped source is used as it is; elsewhere a Windows source that
    maps nowhere is an error. A source that is not a Windows path is used as it is.
    """

    def __init__(self, entries: Iterable[str] = (), *, windows: bool | None = None) -> None:
        self.windows = os.name == "nt" if windows is None else windows
        self._entries: list[tuple[str, str]] = []
        for entry in entries:
            prefix, sep, local = entry.partition("=")
            if not sep or not prefix.strip() or not local.strip():
                raise UsageError(
                    f"--map-source {entry!r}: expected WINDOWS_PREFIX=LOCAL_FOLDER, "
                    "e.g. '\\\\fs01\\dept=/mnt/fs01/dept'"
                )
            self._entries.append((_windows_key(prefix.strip()), local.strip()))
        self._entries.sort(key=lambda e: len(e[0]), reverse=True)

    def map(self, source: str) -> str:
        """The local folder for `source`; raises ValueError saying why there is none."""
        key = _windows_key(source)
        for prefix, local in self._entries:
            if key == prefix or key.startswith(prefix.rstrip("\\") + "\\"):
                rest = source.replace("/", "\\")[len(prefix.rstrip("\\")) :].strip("\\")
                parts = [p for p in rest.split("\\") if p]
                return os.path.join(local, *parts) if parts else local
        if _WINDOWS_PATH.match(source) and not self.windows:
            raise ValueError(
                f"{source!r} is a Windows path and no --map-source prefix matches it "
                "(e.g. --map-source '\\\\server\\share=/mnt/share')"
            )
        return source


def _windows_key(path: str) -> str:
    text = path.replace("/", "\\")
    head = "\\\\" if text.startswith("\\\\") else ""
    body = re.sub(r"\\+", r"\\", text[len(head) :])
    return (head + ntpath.normcase(body)).rstrip("\\") or "\\"


def load_job_file(
    path: str | os.PathLike[str],
    source_map: SourceMap | None = None,
    *,
    strict: bool = False,
    check_sources: bool = True,
) -> JobFile:
    """Read and validate a CSV or JSON job file (by content: JSON starts with `{`).

    Raises ConfigError when the file cannot be read or parsed at all, holds no row, or (with
    `strict`) has any bad row; otherwise bad rows are in `JobFile.errors`. With
    `check_sources=False` sources are neither mapped nor looked at (to read the targets only).
    """
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the job file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 (byte {exc.start}); save it as UTF-8") from None
    mapper = source_map or SourceMap()
    if text.lstrip().startswith("{"):
        rows = list(_json_rows(file, text))
    else:
        rows = list(_csv_rows(file, text))
    if not rows:
        raise ConfigError(f"{file}: no jobs in the file")
    jobs: list[Job] = []
    errors: list[RowError] = []
    seen: dict[tuple[str, ...], int] = {}
    for row in rows:
        if isinstance(row, RowError):
            errors.append(row)
            continue
        job = _validate(file, row, mapper if check_sources else None)
        if isinstance(job, RowError):
            errors.append(job)
            continue
        key = (
            _windows_key(job.source_text),
            job.target.host,
            job.target.site_path.lower(),
            job.target.library.lower(),
            job.target.folder.lower(),
        )
        if key in seen:
            errors.append(RowError(file.name, job.row, "", f"duplicate of row {seen[key]}"))
            continue
        seen[key] = job.row
        jobs.append(job)
    if strict and errors:
        lines = "\n  ".join(str(e) for e in errors)
        raise ConfigError(f"{file}: {len(errors)} bad row(s), nothing run (--strict):\n  {lines}")
    return JobFile(file, jobs, errors)


@dataclass
class _Row:
    """A row before validation, in one shape for CSV and JSON."""

    row: int
    source: str
    target_web: str
    library: str
    subfolder: str
    columns: dict[str, str]
    """Column (or key) names for messages: source, web, library, subfolder."""
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    group: str = ""
    """CSV: Source DocLib, Source SubFolder, RegisterAsHubSite, AssociateWithHubURL."""


_CSV_NAMES = {
    "source": "Source",
    "web": "Target Web",
    "library": "Target DocLib",
    "subfolder": "Target SubFolder",
}
_JSON_NAMES = {
    "source": "SourcePath",
    "web": "TargetPath",
    "library": "TargetList",
    "subfolder": "TargetListRelativePath",
}


def _csv_rows(file: Path, text: str) -> Iterator[_Row | RowError]:
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=False)
    columns: list[str] = list(CSV_COLUMNS)
    for index, cells in enumerate(reader, start=1):
        if not any(c.strip() for c in cells):
            continue
        if index == 1 and cells[0].strip().lower() == "source":
            names = {c.lower(): c for c in CSV_COLUMNS}
            header = [names.get(c.strip().lower(), "") for c in cells]
            unknown = [c for c, h in zip(cells, header, strict=True) if not h]
            if unknown or "Target Web" not in header:
                raise ConfigError(
                    f"{file}: row 1 (header): unknown column(s) {', '.join(unknown) or '-'}; "
                    f"expected {', '.join(CSV_COLUMNS)}"
                )
            columns = header
            continue
        if not 6 <= len(cells) <= len(columns):
            yield RowError(
                file.name,
                index,
                "",
                f"{len(cells)} columns, expected 6 (Source, Source DocLib, Source SubFolder, "
                "Target Web, Target DocLib, Target SubFolder), 8 or 9 (Agent Group)",
            )
            continue
        values = {columns[i]: cells[i].strip() for i in range(len(cells))}
        yield _Row(
            row=index,
            source=values.get("Source", ""),
            target_web=values.get("Target Web", ""),
            library=values.get("Target DocLib", ""),
            subfolder=values.get("Target SubFolder", ""),
            columns=_CSV_NAMES,
            extra={k: values.get(k, "") for k in CSV_COLUMNS[1:3] + CSV_COLUMNS[6:8]},
            group=values.get("Agent Group", ""),
        )


def _json_rows(file: Path, text: str) -> Iterator[_Row | RowError]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{file}: not valid JSON ({exc})") from None
    tasks = doc.get("Tasks") if isinstance(doc, dict) else None
    if not isinstance(tasks, list):
        raise ConfigError(f'{file}: expected {{"Tasks": [...]}} (SPMT\'s JSON job format)')
    for index, task in enumerate(tasks, start=1):
        if not isinstance(task, dict):
            yield RowError(file.name, index, "", "a task must be a JSON object")
            continue
        unknown = [k for k in task if k not in _TASK_KEYS]
        if unknown:
            yield RowError(file.name, index, unknown[0], "unknown task field")
            continue
        settings = task.get("Settings") or {}
        if not isinstance(settings, dict):
            yield RowError(file.name, index, "Settings", "must be a JSON object")
            continue
        texts: dict[str, str] = {}
        bad = ""
        for key in (
            "SourcePath",
            "TargetPath",
            "TargetList",
            "TargetListRelativePath",
            "AgentGroup",
        ):
            value = task.get(key, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                bad = key
                break
            texts[key] = value.strip()
        if bad:
            yield RowError(file.name, index, bad, "must be a string")
            continue
        yield _Row(
            row=index,
            source=texts["SourcePath"],
            target_web=texts["TargetPath"],
            library=texts["TargetList"],
            subfolder=texts["TargetListRelativePath"],
            columns=_JSON_NAMES,
            settings=settings,
            group=texts["AgentGroup"],
        )


def _validate(file: Path, row: _Row, mapper: SourceMap | None) -> Job | RowError:
    def error(column: str, message: str) -> RowError:
        return RowError(file.name, row.row, column, message)

    names = row.columns
    if not row.source:
        return error(names["source"], "empty; name the folder to migrate")
    for column in ("Source DocLib", "Source SubFolder"):
        if row.extra.get(column):
            return error(column, "must be empty for a file share (SharePoint sources are not read)")
    if row.extra.get("AssociateWithHubURL") or row.extra.get("RegisterAsHubSite", "").lower() in (
        "true",
        "yes",
        "1",
    ):
        return error("RegisterAsHubSite", "hub sites are not managed by sharelift; leave it empty")
    try:
        source = mapper.map(row.source) if mapper is not None else row.source
    except ValueError as exc:
        return error(names["source"], str(exc))
    if mapper is not None and not os.path.isdir(source):
        shown = source if source == row.source else f"{row.source} (mapped to {source})"
        return error(names["source"], f"{shown} is not a folder here")
    if not row.target_web:
        return error(names["web"], "empty; give the site or OneDrive URL")
    if not row.library:
        return error(names["library"], 'empty; name the library ("Documents" for a OneDrive)')
    try:
        target = site_triple(row.target_web, row.library, row.subfolder)
    except ShareliftError as exc:
        column = names["subfolder"] if "'..'" in str(exc) else names["web"]
        return error(column, exc.reason)
    options: dict[str, Any] = {}
    ignored: list[str] = []
    warnings: list[str] = []
    for key, value in row.settings.items():
        try:
            if key in _IGNORED_SETTINGS:
                ignored.append(key)
                if key in _NOT_DONE and value not in (False, None, "", 0):
                    warnings.append(f"{key} is not applied: {_NOT_DONE[key]}")
            elif key in _MAPPED_SETTINGS:
                options.update(_setting(key, value))
            else:
                return error(f"Settings.{key}", "unknown setting")
        except (ValueError, UsageError) as exc:
            return error(f"Settings.{key}", str(exc))
    personal = ""
    host_parts = urlsplit(row.target_web).hostname or ""
    if "-my." in host_parts and target.site_path.lower().startswith("/personal/"):
        personal = "/".join(target.site_path.split("/")[:3]).lower()
    return Job(
        file=file.name,
        row=row.row,
        source=source,
        source_text=row.source,
        target=target,
        options=options,
        ignored=tuple(ignored),
        personal_path=personal,
        group=row.group,
        warnings=tuple(warnings),
    )


def _setting(key: str, value: Any) -> dict[str, Any]:
    if key == "MigrateHiddenItems":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return {"skip_hidden": not value}
    if key == "SkipFilesWithExtensions":
        if not isinstance(value, str):
            raise ValueError('must be a string like "txt:mp3"')
        return {"skip_extensions": ScanOptions.parse_extensions(value)} if value.strip() else {}
    if not isinstance(value, str):
        raise ValueError("must be a date string yyyy-MM-dd")
    if not value.strip():
        return {}
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"expected a date yyyy-MM-dd, got {value!r}") from None
    when = when if when.tzinfo else when.astimezone()
    field_name = "created_after" if key == "MigrateItemsCreatedAfter" else "modified_after"
    return {field_name: when}


__all__ = ["Job", "JobFile", "RowError", "SourceMap", "load_job_file"]
