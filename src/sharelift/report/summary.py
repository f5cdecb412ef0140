"""A round's summary (SummaryReport.csv, summary.json, the HTML report's figures), computed
from the state store's counts of the round alone, so that the original report and one rebuilt
later (`sharelift report`) say the same.

Times: the store keeps ISO-8601 UTC; the CSV files show `yyyy-mm-dd hh:mm:ss` in UTC, which
Excel reads as a date and time (`excel_time`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sharelift.state import ItemStatus, JobRecord, RoundRecord, StateStore

GB = 1024**3
TIME_ZONE = "UTC"
_STORE_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"

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
    # sharelift's own, after SPMT's
    "Unchanged items",
    "Interrupted items",
    "Not started items",
    "Deleted items",
    "Time zone",
]


def parse_time(text: str) -> datetime:
    """A time the store keeps, as an aware UTC datetime."""
    return datetime.strptime(text, _STORE_TIME).replace(tzinfo=UTC)


def excel_time(text: str | None) -> str:
    """`2026-11-23T13:05:01.123456Z` -> `2026-11-23 13:05:01` (UTC), which Excel reads as a
    date and time; "" stays ""."""
    return parse_time(text).strftime("%Y-%m-%d %H:%M:%S") if text else ""


def hms(seconds: float) -> str:
    """A duration as `hh:mm:ss` (hours may exceed 24)."""
    total = round(seconds)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def seconds_between(start: str, end: str | None) -> float:
    if not end:
        return 0.0
    return max(0.0, (parse_time(end) - parse_time(start)).total_seconds())


def gb_per_hour(nbytes: int, seconds: float) -> float:
    return (nbytes / GB) / (seconds / 3600) if seconds > 0 else 0.0


@dataclass
class RoundSummary:
    """What one round of one job did. Byte figures are of files only; times ISO-8601 UTC."""

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
    """Left out by sharelift's decision this round (a filter, a link, a rule, the target
    newer, a folder above), not counting unchanged items."""
    failed_items: int
    warning_count: int
    start: str
    end: str
    duration_seconds: float
    gb_per_hour: float
    throttled_requests: int
    log_path: str
    unchanged_items: int = 0
    """Migrated before and unchanged since: nothing to do."""
    interrupted_items: int = 0
    """Being sent when the round stopped; the next run resumes them."""
    not_started_items: int = 0
    """Planned, never reached before the round stopped (not in the ItemReport)."""
    deleted_items: int = 0
    blocked_items: int = 0
    host: str = ""

    def row(self) -> dict[str, Any]:
        """The SummaryReport.csv row."""
        return {
            "Source": self.source,
            "Destination": self.destination,
            "Status": self.status,
            "Total bytes": self.total_bytes,
            "Total GB": round(self.total_bytes / GB, 6),
            "Count of files": self.count_of_files,
            "Migrated bytes": self.migrated_bytes,
            "Migrated GB": round(self.migrated_bytes / GB, 6),
            "Total scanned items": self.total_scanned_items,
            "Total to be migrated": self.total_to_be_migrated,
            "Migrated items": self.migrated_items,
            "Items not migrated": self.items_not_migrated,
            "Skipped items": self.skipped_items,
            "Failed items": self.failed_items,
            "Warning count": self.warning_count,
            "Start": excel_time(self.start),
            "End": excel_time(self.end),
            "Duration": hms(self.duration_seconds),
            "GB/hour": round(self.gb_per_hour, 3),
            "Throttled requests": self.throttled_requests,
            "Round number": self.round_number,
            "Task ID": self.task_id,
            "Log Path": self.log_path,
            "Unchanged items": self.unchanged_items,
            "Interrupted items": self.interrupted_items,
            "Not started items": self.not_started_items,
            "Deleted items": self.deleted_items,
            "Time zone": TIME_ZONE,
        }


def summarize(store: StateStore, job: JobRecord, rnd: RoundRecord) -> RoundSummary:
    """The round's summary, from its counts in the state store (`StateStore.round_counts`:
    kept when the round closed, so a rebuild later gives the same figures)."""
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
        if group.status == ItemStatus.PENDING:
            counts["interrupted" if group.started else "not started"] += group.items
            continue
        counts[group.status] += group.items
        if group.status == ItemStatus.DONE and group.kind == "file":
            migrated_bytes += group.size
        if group.status == ItemStatus.DONE and group.noted:  # migrated, with a note (renamed…)
            warnings += group.items
    duration = seconds_between(rnd.started_at, rnd.ended_at or rnd.heartbeat_at)
    pending = counts["interrupted"] + counts["not started"]
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
        total_to_be_migrated=counts[ItemStatus.DONE] + counts[ItemStatus.FAILED] + pending,
        migrated_items=counts[ItemStatus.DONE],
        items_not_migrated=counts[ItemStatus.FAILED] + counts[ItemStatus.BLOCKED],
        skipped_items=counts[ItemStatus.SKIPPED],
        failed_items=counts[ItemStatus.FAILED],
        warning_count=warnings,
        start=rnd.started_at,
        end=rnd.ended_at or "",
        duration_seconds=duration,
        gb_per_hour=gb_per_hour(migrated_bytes, duration),
        throttled_requests=rnd.throttled,
        log_path=rnd.log_path,
        unchanged_items=counts["unchanged"],
        interrupted_items=counts["interrupted"],
        not_started_items=counts["not started"],
        deleted_items=counts[ItemStatus.DELETED],
        blocked_items=counts[ItemStatus.BLOCKED],
        host=rnd.host or "",
    )
