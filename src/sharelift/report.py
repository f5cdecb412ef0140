"""Migration reports built from the state store, in SPMT's column names where they apply.

Per round of a job, in the report folder:
    ItemReport.csv       one row per item this round touched (migrated, skipped, failed…),
                         with the check that proved each migrated file (Verified by)
    FailureSummary.csv   failures and non-migrated items grouped by error code
    SummaryReport.csv    one row for the round: counts, bytes, times, GB/hour
    summary.json         the same summary, for scripts

CSV files are UTF-8 with a BOM and CRLF line ends so that Excel opens them as they are. They
name every file of the share: like the state store, they are readable by their owner only
(files 0600, the folders made for them 0700).
Reports are rebuilt from the state store alone (`sharelift report`), so they can never disagree
with what the store says, and writing them is the last step of a round (DESIGN.md invariant 2:
target, then state, then reports). Nothing secret is in the store's reported columns.
"""

from __future__ import annotations

import csv
import json
import os
import socket
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sharelift.private import open_private, private_folder
from sharelift.state import (
    ItemRecord,
    ItemStatus,
    JobRecord,
    RoundRecord,
    StateStore,
    VerifiedBy,
)

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

SUMMARY_COLUMNS = [
    "Source",
    "Destination",
    "Status",
    "Total bytes",
    "Total GB",
    "Count of files",
    "Migrated bytes",
    "Migrated GB",
    "Total scanned items",
    "Total to be migrated",
    "Migrated items",
    "Items not migrated",
    "Skipped items",
    "Failed items",
    "Warning count",
    "Start",
    "End",
    "Duration",
    "GB/hour",
    "Throttled requests",
    "Round number",
    "Task ID",
    "Log Path",
]

FAILURE_COLUMNS = ["Result category", "Error code", "Count", "Message", "Example source"]

# SPMT's item statuses; sharelift's state names on the left.
_STATUS = {
    ItemStatus.DONE: "Migrated",
    ItemStatus.SKIPPED: "Skipped",
    ItemStatus.FAILED: "Failed",
    ItemStatus.BLOCKED: "Not migrated",
    ItemStatus.PENDING: "In progress",
    ItemStatus.DELETED: "Deleted",
}


_VERIFIED_BY: dict[str | None, str] = {
    VerifiedBy.HASH: "hash",
    VerifiedBy.PARTS: "package parts",
    VerifiedBy.SIZE: "size only",
}
"""How ItemReport.csv names the check that proved a migrated file."""


_ENRICHED_NOTE: dict[str | None, str] = {
    VerifiedBy.PARTS: "verified; SharePoint added its metadata"
}


def result_category(item: ItemRecord) -> str:
    """A short bucket for the outcome, from the status and the error code's family."""
    if item.status == ItemStatus.DONE:
        if item.verified_by == VerifiedBy.PARTS:
            return "Success (SharePoint added its metadata)"
        if item.verified_by == VerifiedBy.SIZE:
            return "Success (not verified)"
        return "Success (renamed)" if item.error_code else "Success"
    if item.status == ItemStatus.DELETED:
        return "Mirrored deletion"
    code = (item.error_code or "").lower()
    if item.status == ItemStatus.SKIPPED:
        if code.startswith("unchanged") or code in {"target_newer", "target_same"}:
            return "Already up to date"
        if code.startswith("filter"):
            return "Filtered out"
        return "Skipped"
    if item.status == ItemStatus.BLOCKED:
        return "Naming rule"
    if code.startswith(("read", "source")):
        return "Source read failure"
    if code.startswith("hash") or code == "verification_failed":
        return "Verification failure"
    if code in {"accessDenied", "unauthenticated", "forbidden"}:
        return "Permission failure"
    return "Upload failure"


@dataclass
class RoundSummary:
    """What one round of one job did. Byte figures are of files only."""

    task_id: int
    round_number: int
    source: str
    destination: str
    status: str
    total_bytes: int
    count_of_files: int
    migrated_bytes: int
    total_scanned_items: int
    total_to_be_migrated: int
    migrated_items: int
    items_not_migrated: int
    skipped_items: int
    failed_items: int
    warning_count: int
    start: str
    end: str
    duration_seconds: float
    gb_per_hour: float
    throttled_requests: int
    log_path: str

    def row(self) -> dict[str, Any]:
        """The SummaryReport.csv row."""
        gb = 1024**3
        return {
            "Source": self.source,
            "Destination": self.destination,
            "Status": self.status,
            "Total bytes": self.total_bytes,
            "Total GB": round(self.total_bytes / gb, 6),
            "Count of files": self.count_of_files,
            "Migrated bytes": self.migrated_bytes,
            "Migrated GB": round(self.migrated_bytes / gb, 6),
            "Total scanned items": self.total_scanned_items,
            "Total to be migrated": self.total_to_be_migrated,
            "Migrated items": self.migrated_items,
            "Items not migrated": self.items_not_migrated,
            "Skipped items": self.skipped_items,
            "Failed items": self.failed_items,
            "Warning count": self.warning_count,
            "Start": self.start,
            "End": self.end,
            "Duration": _duration(self.duration_seconds),
            "GB/hour": round(self.gb_per_hour, 3),
            "Throttled requests": self.throttled_requests,
            "Round number": self.round_number,
            "Task ID": self.task_id,
            "Log Path": self.log_path,
        }


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    items: Path
    failures: Path
    summary: Path
    summary_json: Path


def _duration(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _seconds_between(start: str, end: str | None) -> float:
    if not end:
        return 0.0
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    return max(0.0, (datetime.strptime(end, fmt) - datetime.strptime(start, fmt)).total_seconds())


def _destination(job: JobRecord, item: ItemRecord) -> str:
    base = job.target.rstrip("/")
    return f"{base}/{item.target_path}" if item.target_path else base


def _source(job: JobRecord, item: ItemRecord) -> str:
    return os.path.join(job.source, item.display_path)


def round_items(store: StateStore, job: JobRecord, rnd: RoundRecord) -> Iterator[ItemRecord]:
    """The items this round changed, in path order."""
    return store.round_items(job.id, rnd.id)


def summarize(
    store: StateStore, job: JobRecord, rnd: RoundRecord, log_path: str = ""
) -> RoundSummary:
    """The round's summary, computed from its items and counters."""
    counts: Counter[str] = Counter()
    total_bytes = files = migrated_bytes = scanned = warnings = 0
    for group in store.round_counts(job.id, rnd.id):
        scanned += group.items
        if group.kind == "file":
            files += group.items
            total_bytes += group.size
        if not group.changed:
            counts["unchanged"] += group.items
            continue
        counts[group.status] += group.items
        if group.status == ItemStatus.DONE and group.kind == "file":
            migrated_bytes += group.size
        if group.status == ItemStatus.DONE and group.noted:  # migrated, with a note (renamed…)
            warnings += group.items
    duration = _seconds_between(rnd.started_at, rnd.ended_at or rnd.heartbeat_at)
    not_migrated = counts[ItemStatus.FAILED] + counts[ItemStatus.BLOCKED]
    return RoundSummary(
        task_id=job.id,
        round_number=rnd.number,
        source=job.source,
        destination=job.target,
        status=rnd.status.capitalize(),
        total_bytes=total_bytes,
        count_of_files=files,
        migrated_bytes=migrated_bytes,
        total_scanned_items=scanned,
        total_to_be_migrated=counts[ItemStatus.DONE]
        + counts[ItemStatus.FAILED]
        + counts[ItemStatus.PENDING],
        migrated_items=counts[ItemStatus.DONE],
        items_not_migrated=not_migrated,
        skipped_items=counts[ItemStatus.SKIPPED] + counts["unchanged"],
        failed_items=counts[ItemStatus.FAILED],
        warning_count=warnings,
        start=rnd.started_at,
        end=rnd.ended_at or "",
        duration_seconds=duration,
        gb_per_hour=(migrated_bytes / 1024**3) / (duration / 3600) if duration > 0 else 0.0,
        throttled_requests=rnd.throttled,
        log_path=log_path,
    )


def _write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp, encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    os.replace(tmp, path)


def item_row(job: JobRecord, item: ItemRecord, round_number: int) -> dict[str, Any]:
    """One ItemReport.csv row."""
    name = item.display_path.rsplit("/", 1)[-1]
    ext = name.rsplit(".", 1)[-1] if "." in name.strip(".") else ""
    done = item.status == ItemStatus.DONE
    return {
        "Source": _source(job, item),
        "Destination": _destination(job, item),
        "Item name": name,
        "Extension": ext,
        "Item size (bytes)": item.size if item.kind == "file" else "",
        "Content type": "File" if item.kind == "file" else "Folder",
        "Status": _STATUS[item.status],
        "Result category": result_category(item),
        "Message": item.error_message or (_ENRICHED_NOTE.get(item.verified_by, "") if done else ""),
        "Error code": item.error_code or "",
        "Source item ID": item.id,
        "Destination item ID": item.item_id or "",
        "Incremental round": round_number,
        "Task ID": job.id,
        "Device name": socket.gethostname(),
        "Start time": item.started_at or "",
        "End time": item.ended_at or "",
        "Attempts": item.attempts,
        "QuickXorHash": item.quick_xor or "",
        "Verified by": _VERIFIED_BY.get(item.verified_by, "") if done else "",
    }


def write_round_reports(
    store: StateStore, job: JobRecord, rnd: RoundRecord, folder: Path, log_path: str = ""
) -> tuple[ReportFiles, RoundSummary]:
    """Write the four report files of one round into `folder` (created if needed), readable by
    their owner only (`sharelift.private`)."""
    private_folder(folder)
    files = ReportFiles(
        folder=folder,
        items=folder / "ItemReport.csv",
        failures=folder / "FailureSummary.csv",
        summary=folder / "SummaryReport.csv",
        summary_json=folder / "summary.json",
    )
    failures: Counter[tuple[str, str]] = Counter()
    examples: dict[tuple[str, str], tuple[str, str]] = {}

    def rows() -> Iterator[dict[str, Any]]:
        for item in round_items(store, job, rnd):
            if item.status in (ItemStatus.FAILED, ItemStatus.BLOCKED):
                key = (result_category(item), item.error_code or "")
                failures[key] += 1
                examples.setdefault(key, (item.error_message or "", _source(job, item)))
            yield item_row(job, item, rnd.number)

    _write_csv(files.items, ITEM_COLUMNS, rows())
    _write_csv(
        files.failures,
        FAILURE_COLUMNS,
        (
            {
                "Result category": cat,
                "Error code": code,
                "Count": n,
                "Message": examples[(cat, code)][0],
                "Example source": examples[(cat, code)][1],
            }
            for (cat, code), n in failures.most_common()
        ),
    )
    summary = summarize(store, job, rnd, log_path)
    _write_csv(files.summary, SUMMARY_COLUMNS, [summary.row()])
    doc = {
        "summary": asdict(summary),
        "failures": [
            {"category": cat, "code": code, "count": n} for (cat, code), n in failures.most_common()
        ],
    }
    tmp = files.summary_json.with_name("summary.json.tmp")
    with open_private(tmp, encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, files.summary_json)
    return files, summary
