"""`scan --inventory`: every item (ScanInventory.csv) and every folder's totals
(FolderSummary.csv), written while the scan streams.

Both files are written as the entries arrive, in the walk's order, so memory holds only the
folders on the current path (a million-item tree costs what a ten-item one does):

- ScanInventory.csv: one row per item, findings or not: what it is, its size and time, what
  happens to it (migrate, renamed, skipped, blocked, filtered), its target path, its codes.
- FolderSummary.csv: one row per folder (SOURCE itself included), written when the walk
  leaves it, so a folder comes after its subfolders: the files, folders, bytes and items with
  findings directly in it, and the same with everything below it.

CSV files are UTF-8 with a BOM, as the other scan reports; times are `yyyy-mm-dd hh:mm:ss` UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from dataclasses import dataclass, field
from typing import TextIO

from sharelift.scanner import ScanEntry, display_path

INVENTORY_CSV = "ScanInventory.csv"
FOLDERS_CSV = "FolderSummary.csv"

INVENTORY_COLUMNS = (
    "Source",
    "Item type",
    "Size",
    "Modified (UTC)",
    "Status",
    "Target path",
    "Codes",
    "Message",
    "Filter",
)
FOLDER_COLUMNS = (
    "Folder",
    "Status",
    "Target path",
    "Files",
    "Folders",
    "Bytes",
    "Items with findings",
    "Files (with subfolders)",
    "Folders (with subfolders)",
    "Bytes (with subfolders)",
    "Items with findings (with subfolders)",
)


@dataclass
class _Counts:
    files: int = 0
    folders: int = 0
    bytes: int = 0
    findings: int = 0

    def add(self, other: _Counts) -> None:
        self.files += other.files
        self.folders += other.folders
        self.bytes += other.bytes
        self.findings += other.findings


@dataclass
class _Open:
    """A folder the walk is inside."""

    parts: tuple[str, ...]
    status: str
    target: str
    own: _Counts = field(default_factory=_Counts)
    below: _Counts = field(default_factory=_Counts)


def _modified(mtime: float) -> str:
    return dt.datetime.fromtimestamp(mtime, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


class Inventory:
    """Writes both files from the scan's entries: `add` each, then `close`."""

    def __init__(self, source: str, prefix: str, items: TextIO, folders: TextIO) -> None:
        self._source = source
        self._prefix = prefix
        self._items = csv.writer(items, lineterminator="\r\n")
        self._folders = csv.writer(folders, lineterminator="\r\n")
        self._items.writerow(INVENTORY_COLUMNS)
        self._folders.writerow(FOLDER_COLUMNS)
        self._open = [_Open((), "migrate", prefix or "/")]

    def _target(self, entry: ScanEntry) -> str:
        if entry.target_parts is None:
            return ""
        return self._prefix + "/" + "/".join(entry.target_parts)

    def add(self, entry: ScanEntry) -> None:
        parent = entry.parts[:-1]
        while self._open[-1].parts != parent[: len(self._open[-1].parts)] or len(
            self._open[-1].parts
        ) > len(parent):
            self._leave()
        folder = self._open[-1]
        codes = " ".join(f.code.value for f in entry.findings)
        message = display_path(entry.findings[0].message) if entry.findings else ""
        self._items.writerow(
            [
                display_path(os.path.join(self._source, *entry.parts)),
                entry.item_type,
                "" if entry.is_dir else entry.size,
                _modified(entry.mtime) if entry.mtime else "",
                entry.status.value,
                display_path(self._target(entry)),
                codes,
                message,
                entry.filtered or "",
            ]
        )
        if entry.is_dir:
            folder.own.folders += 1
        else:
            folder.own.files += 1
            folder.own.bytes += entry.size
        if entry.findings:
            folder.own.findings += 1
        if entry.is_dir:
            self._open.append(_Open(entry.parts, entry.status.value, self._target(entry)))

    def _leave(self) -> None:
        done = self._open.pop()
        total = _Counts()
        total.add(done.own)
        total.add(done.below)
        if self._open:
            self._open[-1].below.add(total)
        own = done.own
        self._folders.writerow(
            [
                display_path(os.path.join(self._source, *done.parts)),
                done.status,
                display_path(done.target),
                own.files,
                own.folders,
                own.bytes,
                own.findings,
                total.files,
                total.folders,
                total.bytes,
                total.findings,
            ]
        )

    def close(self) -> None:
        """Leave every folder still open (SOURCE last)."""
        while self._open:
            self._leave()
