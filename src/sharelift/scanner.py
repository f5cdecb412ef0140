"""Scan: walk a source tree, decide every item against the OneDrive / SharePoint rules, report.

:func:`scan` streams one :class:`ScanEntry` per item (target names included: the mapping the
migration follows); :class:`ScanSummary` counts them; :func:`run_scan` ties both together and
writes the reports:

- ``ScanSummary.csv``: one row, SPMT's scan-summary columns where they apply;
- ``ScanReport.csv``: one row per finding (an item with two findings has two rows);
- ``summary.json``: the summary, machine-readable;
- with ``inventory``, ``ScanInventory.csv`` (every item) and ``FolderSummary.csv`` (each
  folder's totals), written as the scan streams (:mod:`sharelift.inventory`).

CSV files are UTF-8 with a byte-order mark so that Excel opens them with the right encoding.
Nothing here needs the network, and nothing on the source changes.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import heapq
import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TextIO, cast

from sharelift.errors import OptionError, UsageError
from sharelift.plan import Planned
from sharelift.private import open_private, private_folder
from sharelift.source.pipeline import Parent, named, plan_tree
from sharelift.source.rules import Code, Finding, Severity, Status
from sharelift.source.walk import ScanOptions, WalkProblem, check_source

SUMMARY_CSV = "ScanSummary.csv"
REPORT_CSV = "ScanReport.csv"
SUMMARY_JSON = "summary.json"
TOP = 10

_PROBLEM_SEVERITY = {
    WalkProblem.UNREADABLE_FOLDER: Severity.BLOCKED,
    WalkProblem.UNREADABLE_FILE: Severity.BLOCKED,
    WalkProblem.SYMLINK_NOT_FOLLOWED: Severity.SKIPPED,
    WalkProblem.SYMLINK_LOOP: Severity.SKIPPED,
    WalkProblem.BROKEN_SYMLINK: Severity.SKIPPED,
    WalkProblem.SPECIAL_FILE: Severity.SKIPPED,
}
_PROBLEM_MESSAGE = {
    WalkProblem.UNREADABLE_FOLDER: "folder cannot be listed",
    WalkProblem.UNREADABLE_FILE: "file cannot be read",
    WalkProblem.SYMLINK_NOT_FOLLOWED: "symbolic link not followed (use --follow-symlinks)",
    WalkProblem.SYMLINK_LOOP: "symbolic link leads back to one of its parent folders",
    WalkProblem.BROKEN_SYMLINK: "symbolic link points nowhere",
    WalkProblem.SPECIAL_FILE: "not a regular file or folder (FIFO, socket or device)",
}


def display_path(path: str) -> str:
    """A path fit for a report: bytes that are not UTF-8 shown as ``\\xNN``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _problem_finding(problem: WalkProblem, detail: str | None) -> Finding:
    message = _PROBLEM_MESSAGE[problem]
    if detail and problem in (WalkProblem.UNREADABLE_FOLDER, WalkProblem.UNREADABLE_FILE):
        message = f"{message}: {detail}"
    return Finding(Code(problem.value), _PROBLEM_SEVERITY[problem], message)


def _status_of(findings: Sequence[Finding]) -> Status:
    if not findings:
        return Status.MIGRATE
    severities = {f.severity for f in findings}
    for severity, status in (
        (Severity.BLOCKED, Status.BLOCKED),
        (Severity.SKIPPED, Status.SKIPPED),
        (Severity.RENAMED, Status.RENAMED),
    ):
        if severity in severities:
            return status
    return Status.MIGRATE


class ScanEntry(NamedTuple):
    """One scanned item and what will happen to it.

    ``parts`` is the source path relative to SOURCE; ``target_parts`` the target path relative
    to the target folder (``None`` when the item is not migrated); ``path_length`` the length of
    the decoded target path counted against the 400-character limit (library prefix included
    when a TARGET was given).
    """

    parts: tuple[str, ...]
    target_parts: tuple[str, ...] | None
    is_dir: bool
    size: int
    mtime: float
    status: Status
    findings: tuple[Finding, ...] = ()
    path_length: int = 0
    filtered: str | None = None

    @property
    def relpath(self) -> str:
        return "/".join(self.parts)

    @property
    def item_type(self) -> str:
        """ "Folder", "File", or "Link" for a symbolic link that was not followed: whether it
        points to a file or a folder is not known without reading the link (docs/scan.md)."""
        if any(f.code is Code.SYMLINK_NOT_FOLLOWED for f in self.findings):
            return "Link"
        return "Folder" if self.is_dir else "File"


def scan(root: str | os.PathLike[str], options: ScanOptions) -> Iterator[ScanEntry]:
    """Every item under SOURCE with its decision, in the walk's stable order.

    The decisions are the planning pipeline's (`sharelift.source.pipeline`), the ones a
    migration follows. A folder's entry comes just before its content, its files before its
    subfolders. Memory is bounded by the folders pending on the current path, as in the walk.
    Raises :class:`~sharelift.errors.SourceError` when SOURCE is not a readable folder.
    """
    # Folder entries decided in their parent's listing, emitted with their own listing (which
    # may add a problem: unreadable, a loop).
    pending: dict[tuple[str, ...], ScanEntry] = {}
    for listing, parent, plans in plan_tree(root, options):
        if listing.parts:
            folder = pending.pop(listing.parts)
            if listing.problem is not None:
                found = (*folder.findings, _problem_finding(listing.problem, listing.detail))
                status = _status_of(found)
                folder = ScanEntry(
                    folder.parts,
                    folder.target_parts if status.migrated else None,
                    True, 0, folder.mtime, status, found, folder.path_length,
                )  # fmt: skip
            yield folder
        parent_target = tuple(parent.target.split("/")) if parent.target else ()
        for plan in plans:
            entry = _entry(plan, parent, parent_target)
            if plan.item.is_dir and named(plan.item):
                # Emitted with the folder's own listing, just before its content.
                pending[entry.parts] = entry
            else:
                yield entry


_PARENT_NOT_MIGRATED = Finding(
    Code.PARENT_NOT_MIGRATED, Severity.SKIPPED, "a parent folder is not migrated"
)


def _entry(plan: Planned, parent: Parent, parent_target: tuple[str, ...]) -> ScanEntry:
    child = plan.item
    if child.filtered is not None:
        return ScanEntry(
            child.parts, None, child.is_dir, child.size, child.mtime, Status.FILTERED,
            filtered=child.filtered,
        )  # fmt: skip
    decision = plan.decision
    if decision is None:  # a problem the walk found
        assert child.problem is not None
        found: tuple[Finding, ...] = (_problem_finding(child.problem, child.detail),)
        return ScanEntry(
            child.parts, None, child.is_dir, child.size, child.mtime, _status_of(found),
            found, parent.length + 1 + len(child.name),
        )  # fmt: skip
    found = decision.findings
    if parent.target is None:
        found = (*found, _PARENT_NOT_MIGRATED)
    status = _status_of(found)
    target = (
        (*parent_target, decision.target)
        if parent.target is not None and decision.target is not None and status.migrated
        else None
    )
    return ScanEntry(
        child.parts, target, child.is_dir, child.size, child.mtime, status, found,
        decision.path_length,
    )  # fmt: skip


@dataclass
class ScanSummary:
    """Counts over a stream of :class:`ScanEntry`; ``add`` each entry, then read or export."""

    source: str
    target: str = ""
    rename: str = "underscore"
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    finished: dt.datetime | None = None
    folders: int = 0
    files: int = 0
    bytes: int = 0
    filtered: int = 0
    filtered_bytes: int = 0
    items_with_issues: int = 0
    folders_with_issues: int = 0
    to_migrate: int = 0
    bytes_to_migrate: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    filters: Counter[str] = field(default_factory=Counter)
    _largest: list[tuple[int, str]] = field(default_factory=list)
    _longest: list[tuple[int, str]] = field(default_factory=list)
    target_prefix: str = ""

    def add(self, entry: ScanEntry) -> None:
        """Count one entry; O(1) memory per entry (only the top 10 lists are kept)."""
        self.statuses[entry.status.value] += 1
        if entry.status is Status.FILTERED:
            self.filtered += 1
            self.filtered_bytes += entry.size
            self.filters[entry.filtered or "filter"] += 1
            if entry.is_dir:
                self.folders += 1
            else:
                self.files += 1
            return
        if entry.is_dir:
            self.folders += 1
        else:
            self.files += 1
            self.bytes += entry.size
            if len(self._largest) < TOP or entry.size >= self._largest[0][0]:
                _push(self._largest, (entry.size, entry.relpath))
        if entry.findings:
            self.items_with_issues += 1
            if entry.is_dir:
                self.folders_with_issues += 1
            for finding in entry.findings:
                self.findings[finding.code.value] += 1
        if entry.status.migrated:
            self.to_migrate += 1
            if not entry.is_dir:
                self.bytes_to_migrate += entry.size
        if entry.target_parts is not None and (
            len(self._longest) < TOP or entry.path_length >= self._longest[0][0]
        ):
            path = self.target_prefix + "/" + "/".join(entry.target_parts)
            _push(self._longest, (entry.path_length, path))

    @property
    def scanned(self) -> int:
        return self.folders + self.files

    @property
    def largest_files(self) -> list[tuple[int, str]]:
        return sorted(self._largest, key=lambda x: (-x[0], x[1]))

    @property
    def longest_paths(self) -> list[tuple[int, str]]:
        return sorted(self._longest, key=lambda x: (-x[0], x[1]))

    @property
    def has_findings(self) -> bool:
        return self.items_with_issues > 0

    @property
    def duration(self) -> float:
        end = self.finished or dt.datetime.now(dt.UTC)
        return (end - self.started).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data (the ``--json`` output and summary.json)."""
        return {
            "source": display_path(self.source),
            "target": self.target,
            "target_prefix": self.target_prefix,
            "rename": self.rename,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "duration_seconds": round(self.duration, 3),
            "scanned_items": self.scanned,
            "folders": self.folders,
            "files": self.files,
            "bytes": self.bytes,
            "items_with_issues": self.items_with_issues,
            "folders_with_issues": self.folders_with_issues,
            "filtered_out": self.filtered,
            "filtered_bytes": self.filtered_bytes,
            "to_be_migrated": self.to_migrate,
            "bytes_to_be_migrated": self.bytes_to_migrate,
            "renamed": self.statuses[Status.RENAMED.value],
            "skipped": self.statuses[Status.SKIPPED.value],
            "blocked": self.statuses[Status.BLOCKED.value],
            "findings": dict(sorted(self.findings.items())),
            "filters": dict(sorted(self.filters.items())),
            "largest_files": [{"path": display_path(p), "size": s} for s, p in self.largest_files],
            "longest_paths": [
                {"path": display_path(p), "length": n} for n, p in self.longest_paths
            ],
        }


def _push(heap: list[tuple[int, str]], item: tuple[int, str]) -> None:
    if len(heap) < TOP:
        heapq.heappush(heap, item)
    else:
        heapq.heappushpop(heap, item)


SUMMARY_COLUMNS = (
    "Source",
    "Destination",
    "Total scanned items",
    "Total scanned folders",
    "Total scanned files",
    "Folders with issues",
    "Items with issues",
    "Items filtered out",
    "Total to be migrated",
    "Total bytes",
    "Total bytes to be migrated",
    "Renamed items",
    "Skipped items",
    "Blocked items",
    "Start",
    "End",
    "Duration",
)
REPORT_COLUMNS = (
    "Source",
    "Target name",
    "Target path",
    "Item type",
    "Size",
    "Code",
    "Severity",
    "Message",
)


def _report_rows(entry: ScanEntry, source_root: str, prefix: str) -> Iterator[list[str]]:
    source = display_path(os.path.join(source_root, *entry.parts))
    target_name = display_path(entry.target_parts[-1]) if entry.target_parts else ""
    target_path = prefix + "/" + "/".join(entry.target_parts) if entry.target_parts else ""
    kind = entry.item_type
    for finding in entry.findings:
        yield [
            source, target_name, target_path, kind, str(entry.size),
            finding.code.value, finding.severity.value, display_path(finding.message),
        ]  # fmt: skip


def _report_dir(report: str | os.PathLike[str], source: str) -> Path:
    directory = Path(report).resolve()
    source_dir = Path(source).resolve()
    if directory == source_dir or source_dir in directory.parents:
        raise UsageError(f"--report: {report} is inside SOURCE; the source is never written to")
    try:
        private_folder(directory)
    except OSError as exc:
        raise UsageError(f"--report: cannot create {report}: {exc.strerror}") from None
    return directory


def _open_report(path: Path, encoding: str = "utf-8-sig") -> TextIO:
    """Open a report for writing (CSV: UTF-8 with BOM), readable by its owner only (it names
    every file of the share); raises UsageError naming the file."""
    try:
        return cast(TextIO, open_private(path, encoding=encoding, newline=""))
    except OSError as exc:
        raise UsageError(f"--report: cannot write {path}: {exc.strerror}") from None


def run_scan(
    root: str | os.PathLike[str],
    options: ScanOptions,
    *,
    report_dir: str | os.PathLike[str] | None = None,
    target_text: str = "",
    inventory: bool = False,
) -> ScanSummary:
    """Scan SOURCE and count everything; with ``report_dir``, also write the three reports
    (and, with ``inventory``, the two inventory files).

    Raises SourceError for a missing or unreadable SOURCE and UsageError for an unusable
    report folder (or ``inventory`` without one); findings are not errors.
    """
    if inventory and report_dir is None:
        raise OptionError("inventory", "needs a report folder to write into")
    source = check_source(root)
    prefix = options.target.path if options.target else ""
    summary = ScanSummary(
        source=os.path.abspath(source),
        target=target_text,
        rename=str(options.rename),
        target_prefix=prefix,
    )
    directory = _report_dir(report_dir, source) if report_dir is not None else None
    started = time.monotonic()
    if directory is None:
        for entry in scan(source, options):
            summary.add(entry)
    else:
        with contextlib.ExitStack() as files:
            writer = csv.writer(files.enter_context(_open_report(directory / REPORT_CSV)))
            writer.writerow(REPORT_COLUMNS)
            listed = None
            if inventory:
                from sharelift.inventory import FOLDERS_CSV, INVENTORY_CSV, Inventory

                listed = Inventory(
                    summary.source,
                    prefix,
                    files.enter_context(_open_report(directory / INVENTORY_CSV)),
                    files.enter_context(_open_report(directory / FOLDERS_CSV)),
                )
            for entry in scan(source, options):
                summary.add(entry)
                if entry.findings:
                    writer.writerows(_report_rows(entry, summary.source, prefix))
                if listed is not None:
                    listed.add(entry)
            if listed is not None:
                listed.close()
    summary.finished = summary.started + dt.timedelta(seconds=time.monotonic() - started)
    if directory is not None:
        write_summary(directory, summary)
    return summary


def write_summary(directory: Path, summary: ScanSummary) -> None:
    """Write ``ScanSummary.csv`` and ``summary.json`` into ``directory``."""
    data = summary.to_dict()
    with _open_report(directory / SUMMARY_CSV) as stream:
        writer = csv.writer(stream)
        writer.writerow(SUMMARY_COLUMNS)
        writer.writerow(
            [
                data["source"], summary.target, summary.scanned, summary.folders, summary.files,
                summary.folders_with_issues, summary.items_with_issues, summary.filtered,
                summary.to_migrate, summary.bytes, summary.bytes_to_migrate,
                data["renamed"], data["skipped"], data["blocked"],
                data["started"], data["finished"], f"{summary.duration:.3f}",
            ]
        )  # fmt: skip
    with _open_report(directory / SUMMARY_JSON, encoding="utf-8") as stream:
        stream.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
