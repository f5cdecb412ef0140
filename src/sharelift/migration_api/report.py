"""MigrationJobs.csv: a row per Migration API package and its job, beside a round's reports.

Written from the state store after the round's own reports (`sharelift.report`), for
`--via migration-api` runs; the SAS URIs and the key file are never written.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sharelift.state import JobRecord, StateStore

FILE_NAME = "MigrationJobs.csv"
COLUMNS = (
    "Package",
    "Status",
    "Migration job",
    "Files",
    "Bytes",
    "Errors",
    "Warnings",
    "Own containers",
    "Created",
    "Submitted",
    "Ended",
    "Message",
)


def write_migration_jobs(store: StateStore, job: JobRecord, folder: Path) -> Path:
    """Write MigrationJobs.csv for every package of `job` into `folder`; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in store.migration_packages(job.id):
            writer.writerow(
                (
                    p.package_id,
                    p.status.value,
                    p.migration_job_id or "",
                    p.files,
                    p.bytes,
                    p.errors,
                    p.warnings,
                    "yes" if p.own_containers else "no",
                    p.created_at,
                    p.submitted_at or "",
                    p.ended_at or "",
                    p.message or "",
                )
            )
    return path
