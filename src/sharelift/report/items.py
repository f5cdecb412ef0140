"""One pass over a round's items: the ItemReport rows, and what the other reports need of
them (failures by code, outcomes by category, the largest files, the failed items, the
renames), gathered in bounded memory however many items there are."""

from __future__ import annotations

import heapq
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sharelift.report.outcomes import RENAME_CODES, describe, started_in_round, verified_by
from sharelift.report.summary import excel_time
from sharelift.state import ItemRecord, ItemStatus, JobRecord, RoundRecord

ITEM_COLUMNS = [
    "Source",
    "Destination",
    "Item name",
    "Extension",
    "Item size (bytes)",
    "Content type",
    "Status",
    "Result category",
    "Message",
    "Error code",
    "Source item ID",
    "Destination item ID",
    "Incremental round",
    "Task ID",
    "Device name",
    "Start time",
    "End time",
    "Attempts",
    "QuickXorHash",
    "Verified by",
]

FAILURE_COLUMNS = [
    "Status",
    "Result category",
    "Error code",
    "Count",
    "Bytes",
    "Message",
    "Example source",
]

LISTED = 200
"""Failed items and renames the HTML report lists by name (the CSV has them all)."""
LARGEST = 10


def destination(job: JobRecord, item: ItemRecord) -> str:
    base = job.target.rstrip("/")
    return f"{base}/{item.target_path}" if item.target_path else base


def source(job: JobRecord, item: ItemRecord) -> str:
    return os.path.join(job.source, item.display_path)


@dataclass(frozen=True)
class Listed:
    """One item as the HTML report lists it."""

    source: str
    destination: str
    size: int | None
    status: str
    category: str
    code: str
    message: str


@dataclass
class Group:
    """Items of one status, category and code: how many, their bytes and an example."""

    count: int = 0
    size: int = 0
    message: str = ""
    example: str = ""


@dataclass
class RoundItems:
    """What one pass over a round's items gathered (`rows` does the pass)."""

    job: JobRecord
    rnd: RoundRecord
    groups: dict[tuple[str, str, str], Group] = field(default_factory=dict)
    """(Status, Result category, Error code) -> the group, every listed item counted."""
    categories: Counter[str] = field(default_factory=Counter)
    category_bytes: Counter[str] = field(default_factory=Counter)
    failed: list[Listed] = field(default_factory=list)
    failed_count: int = 0
    renames: list[Listed] = field(default_factory=list)
    rename_count: int = 0
    _largest: list[tuple[int, int, Listed]] = field(default_factory=list)

    @property
    def largest(self) -> list[Listed]:
        """The largest files the round listed, largest first."""
        return [entry for _, _, entry in sorted(self._largest, key=lambda x: (-x[0], x[1]))]

    def failure_groups(self) -> list[tuple[tuple[str, str, str], Group]]:
        """The groups of items that are not at the target because of a failure or a limit,
        most numerous first (FailureSummary.csv)."""
        wanted = {"Failed", "Not migrated"}
        found = [(key, g) for key, g in self.groups.items() if key[0] in wanted]
        return sorted(found, key=lambda kg: (-kg[1].count, kg[0]))

    def rows(self, items: Iterator[ItemRecord]) -> Iterator[dict[str, Any]]:
        """The ItemReport rows of `items` (a pending item the round never started is left
        out), gathering as they go."""
        job, rnd = self.job, self.rnd
        host = rnd.host or ""
        for number, item in enumerate(items):
            if not started_in_round(item):
                continue
            shown = describe(item)
            src, dst = source(job, item), destination(job, item)
            size = item.size if item.kind == "file" else None
            key = (shown.status, shown.category, shown.code)
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = Group(message=shown.message, example=src)
            group.count += 1
            group.size += size or 0
            self.categories[shown.category] += 1
            self.category_bytes[shown.category] += size or 0
            entry = Listed(src, dst, size, shown.status, shown.category, shown.code, shown.message)
            if item.status is ItemStatus.FAILED or item.status is ItemStatus.BLOCKED:
                self.failed_count += 1
                if len(self.failed) < LISTED:
                    self.failed.append(entry)
            if item.status is ItemStatus.DONE and shown.code in RENAME_CODES:
                self.rename_count += 1
                if len(self.renames) < LISTED:
                    self.renames.append(entry)
            if size:
                ranked = (size, number, entry)
                if len(self._largest) < LARGEST:
                    heapq.heappush(self._largest, ranked)
                elif ranked[:2] > self._largest[0][:2]:
                    heapq.heapreplace(self._largest, ranked)
            yield _row(job, rnd, item, host, shown.status, shown.category, shown.code,
                       shown.message, src, dst)  # fmt: skip


def _row(
    job: JobRecord,
    rnd: RoundRecord,
    item: ItemRecord,
    host: str,
    status: str,
    category: str,
    code: str,
    message: str,
    src: str,
    dst: str,
) -> dict[str, Any]:
    name = item.display_path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1] if "." in name.strip(".") else ""
    return {
        "Source": src,
        "Destination": dst,
        "Item name": name,
        "Extension": ext,
        "Item size (bytes)": item.size if item.kind == "file" else "",
        "Content type": "File" if item.kind == "file" else "Folder",
        "Status": status,
        "Result category": category,
        "Message": message,
        "Error code": code,
        "Source item ID": item.id,
        "Destination item ID": item.item_id or "",
        "Incremental round": rnd.number,
        "Task ID": job.id,
        "Device name": host,
        "Start time": excel_time(item.started_at),
        "End time": excel_time(item.ended_at),
        "Attempts": item.attempts,
        "QuickXorHash": item.quick_xor or "",
        "Verified by": verified_by(item),
    }
