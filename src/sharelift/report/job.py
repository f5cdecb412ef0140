"""The job across its rounds: what is at the target now, what is not and why (JobReport.csv),
and every round's summary (JobRounds.csv), from the state store as it stands."""

from __future__ import annotations

import os
from dataclasses import dataclass

from sharelift.report.outcomes import STATUS_TEXT, category
from sharelift.report.summary import RoundSummary, summarize
from sharelift.state import ItemStatus, JobRecord, StateStore

JOB_COLUMNS = [
    "Where",
    "Status",
    "Result category",
    "Error code",
    "Content type",
    "Items",
    "Bytes",
    "Last round",
    "Example source",
    "Message",
]

AT_TARGET = "At the target"
NOT_AT_TARGET = "Not at the target"
_WHERE = {
    ItemStatus.DONE: AT_TARGET,
    ItemStatus.DELETED: "Removed from the target",
    ItemStatus.PENDING: "Not at the target yet",
}
_WAITING = "Waiting for the next run"


@dataclass(frozen=True)
class JobLine:
    """One JobReport.csv row: items of one kind, status and code, as they stand now."""

    where: str
    status: str
    category: str
    code: str
    kind: str
    items: int
    size: int
    last_round: int | None
    example: str
    message: str

    def row(self) -> dict[str, object]:
        return {
            "Where": self.where,
            "Status": self.status,
            "Result category": self.category,
            "Error code": self.code,
            "Content type": "File" if self.kind == "file" else "Folder",
            "Items": self.items,
            "Bytes": self.size,
            "Last round": self.last_round or "",
            "Example source": self.example,
            "Message": self.message,
        }


def job_lines(store: StateStore, job: JobRecord) -> list[JobLine]:
    """The job's items now, grouped: at the target first, then what is not and why."""
    lines = []
    for group in store.outcome_counts(job.id):
        status = group.status
        example = os.path.join(
            job.source, os.fsdecode(group.example_path).encode("utf-8", "backslashreplace").decode()
        )
        if status is ItemStatus.PENDING:
            name, code, message = _WAITING, "", "planned; the next run migrates it"
        else:
            found = category(status, group.code)
            name, code = found.name, group.code
            message = group.example_message if status is not ItemStatus.DONE else ""
            if status is not ItemStatus.DONE and not message:
                message = found.meaning
        lines.append(
            JobLine(
                _WHERE.get(status, NOT_AT_TARGET),
                STATUS_TEXT[status],
                name,
                code,
                group.kind,
                group.items,
                group.size,
                group.last_round,
                example,
                message,
            )
        )
    order = [AT_TARGET, "Removed from the target", "Not at the target yet", NOT_AT_TARGET]
    return sorted(lines, key=lambda line: (order.index(line.where), -line.items))


def round_summaries(store: StateStore, job: JobRecord) -> list[RoundSummary]:
    """Every round of the job, oldest first (JobRounds.csv, the HTML report's history)."""
    return [summarize(store, job, rnd) for rnd in store.rounds(job.id)]
