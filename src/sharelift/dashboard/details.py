"""A job's page, read on demand (not on every tick): its rounds, its failures with their reasons,
its renames, and the failures as a CSV file.

Failures are the job's items that are not at the target and should be: `failed` (the next run
tries again) and `blocked` (a SharePoint limit no rename fixes). They are read through the
store's status index, in path order; a page lists the first `LIMIT` that match its filter and
the CSV file all of them. Renames are the job's `done` items carrying a naming rule's code.
Every text goes through `text.shown` (no secret reaches a page or a file).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from sharelift.dashboard.text import shown
from sharelift.report.outcomes import RENAME_CODES, describe
from sharelift.state import ItemRecord, ItemStatus, JobRecord, RoundRecord, StateStore

LIMIT = 500
"""Rows a page lists at most (the CSV file has them all)."""
FAILURE_COLUMNS = [
    "Source path",
    "Status",
    "Result category",
    "Error code",
    "Message",
    "Round",
    "Attempts",
    "Last attempt (UTC)",
]


@dataclass(frozen=True)
class Failure:
    path: str
    status: str
    category: str
    code: str
    message: str
    round_number: int | None
    attempts: int
    ended_at: str

    def matches(self, query: str) -> bool:
        """True when `query` (lower case) is in the path, category, code or message."""
        return not query or any(
            query in field.lower() for field in (self.path, self.category, self.code, self.message)
        )

    def row(self) -> list[str]:
        return [
            self.path,
            self.status,
            self.category,
            self.code,
            self.message,
            "" if self.round_number is None else str(self.round_number),
            str(self.attempts),
            self.ended_at.replace("T", " ").rstrip("Z")[:19],
        ]


@dataclass(frozen=True)
class Rename:
    source: str
    target: str
    rule: str
    message: str


@dataclass(frozen=True)
class JobDetails:
    job: JobRecord
    rounds: list[RoundRecord]
    failures: list[Failure]
    failures_total: int
    """How many failures match the filter (the page lists at most LIMIT)."""
    renames: list[Rename]
    renames_more: bool
    """True when the job has more than LIMIT renames."""


def failures(store: StateStore, job_id: int, query: str = "") -> Iterator[Failure]:
    """The job's failed and blocked items matching `query` (case-insensitive), in path order
    (failed first)."""
    numbers = {r.id: r.number for r in store.rounds(job_id)}
    needle = query.strip().lower()
    for status in (ItemStatus.FAILED, ItemStatus.BLOCKED):
        for item in store.items(job_id, status):
            found = _failure(item, numbers)
            if found.matches(needle):
                yield found


def _failure(item: ItemRecord, numbers: dict[int, int]) -> Failure:
    said = describe(item)
    return Failure(
        path=shown(item.display_path),
        status=said.status,
        category=said.category,
        code=said.code,
        message=shown(said.message),
        round_number=numbers.get(item.round_id) if item.round_id is not None else None,
        attempts=item.attempts,
        ended_at=item.ended_at or "",
    )


def job_details(store: StateStore, job_id: int, query: str = "") -> JobDetails | None:
    """What the job's page shows (None for a job the store does not have)."""
    job = store.job(job_id)
    if job is None:
        return None
    listed: list[Failure] = []
    total = 0
    for failure in failures(store, job_id, query):
        total += 1
        if len(listed) < LIMIT:
            listed.append(failure)
    renames: list[Rename] = []
    more = False
    for item in store.noted_items(job_id, ItemStatus.DONE):
        if item.error_code not in RENAME_CODES:
            continue
        if len(renames) == LIMIT:
            more = True
            break
        renames.append(
            Rename(
                source=shown(item.display_path),
                target=shown(item.target_path or ""),
                rule=item.error_code or "",
                message=shown(item.error_message or ""),
            )
        )
    return JobDetails(job, store.rounds(job_id), listed, total, renames, more)


def failures_csv(store: StateStore, job_id: int, query: str = "") -> bytes:
    """The job's failures matching `query` as a CSV file Excel opens as it is (UTF-8 with a
    BOM, CRLF), like the reports."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FAILURE_COLUMNS)
    for failure in failures(store, job_id, query):
        writer.writerow(failure.row())
    return out.getvalue().encode("utf-8-sig")
