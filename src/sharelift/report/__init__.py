"""Migration reports built from the state store, in SPMT's column names where they apply.

Per round of a job, in the report folder:
    ItemReport.csv       one row per item this round settled (migrated, skipped, failed…)
    FailureSummary.csv   what was not migrated (failed, or blocked by a limit), by code
    SummaryReport.csv    one row for the round: counts, bytes, times, GB/hour, Log Path
    JobReport.csv        the job as it stands after the round: at the target or not, and why
    summary.json         the summary, failures and outcomes by category, for scripts
    report.html          all of it on one self-contained page, with the throughput chart

    outcomes.py   each item's Status, Result category and Message (docs/outcomes.md)
    summary.py    the round's figures; times as Excel reads them (UTC)
    items.py      one pass over the round's items: ItemReport rows and what the rest needs
    job.py        the job across rounds
    chart.py, html.py   the HTML report

CSV files are UTF-8 with a BOM and CRLF line ends so that Excel opens them as they are; times
are `yyyy-mm-dd hh:mm:ss` in UTC. They name every file of the share: like the state store,
they are readable by their owner only (files 0600, the folders made for them 0700). Reports
are built from the state store alone, through the StateStore interface: `sharelift report`
rebuilds a round's files with the same figures whenever it runs (a round's items and counts are
kept as the round left them). Writing them is the last step of a round (DESIGN.md invariant 2:
target, then state, then reports). Nothing secret is in the store's reported columns.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sharelift.private import open_private, private_folder
from sharelift.report.chart import intervals
from sharelift.report.html import render
from sharelift.report.items import FAILURE_COLUMNS, ITEM_COLUMNS, RoundItems
from sharelift.report.job import JOB_COLUMNS, job_lines, round_summaries
from sharelift.report.outcomes import CATEGORIES, describe
from sharelift.report.summary import SUMMARY_COLUMNS, TIME_ZONE, RoundSummary, summarize
from sharelift.state import ItemRecord, JobRecord, RoundRecord, StateStore
from sharelift.state.records import utcnow


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    items: Path
    failures: Path
    summary: Path
    summary_json: Path
    job: Path
    html: Path


def write_csv(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    """A CSV file Excel opens as it is (UTF-8 with a BOM, CRLF), written whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp, encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open_private(tmp, encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def round_items(store: StateStore, job: JobRecord, rnd: RoundRecord) -> Iterable[ItemRecord]:
    """The items this round changed, as it left them, in path order."""
    return store.round_items(job.id, rnd.id)


def write_round_reports(
    store: StateStore, job: JobRecord, rnd: RoundRecord, folder: Path
) -> tuple[ReportFiles, RoundSummary]:
    """Write every report file of one round into `folder` (created if needed). The round's
    own files (ItemReport, FailureSummary, SummaryReport, summary.json) are the same whenever
    they are written; JobReport.csv and report.html's job section show the job as it stands
    when they are written."""
    private_folder(folder)
    files = ReportFiles(
        folder=folder,
        items=folder / "ItemReport.csv",
        failures=folder / "FailureSummary.csv",
        summary=folder / "SummaryReport.csv",
        summary_json=folder / "summary.json",
        job=folder / "JobReport.csv",
        html=folder / "report.html",
    )
    gathered = RoundItems(job, rnd)
    write_csv(files.items, ITEM_COLUMNS, gathered.rows(iter(round_items(store, job, rnd))))
    groups = gathered.failure_groups()
    write_csv(
        files.failures,
        FAILURE_COLUMNS,
        (
            {
                "Status": status,
                "Result category": category,
                "Error code": code,
                "Count": group.count,
                "Bytes": group.size,
                "Message": group.message,
                "Example source": group.example,
            }
            for (status, category, code), group in groups
        ),
    )
    summary = summarize(store, job, rnd)
    write_csv(files.summary, SUMMARY_COLUMNS, [summary.row()])
    now = job_lines(store, job)
    write_csv(files.job, JOB_COLUMNS, (line.row() for line in now))
    doc = {
        "time_zone": TIME_ZONE,
        "summary": asdict(summary),
        "failures": [
            {"status": st, "category": cat, "code": code, "count": g.count, "bytes": g.size}
            for (st, cat, code), g in groups
        ],
        "categories": dict(sorted(gathered.categories.items())),
    }
    _write_text(files.summary_json, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    end = rnd.ended_at or rnd.heartbeat_at
    chart = intervals(store.round_samples(rnd.id), rnd.started_at, end)
    history = round_summaries(store, job)
    _write_text(files.html, render(summary, gathered, chart, now, history, utcnow()))
    return files, summary


def write_job_reports(store: StateStore, job: JobRecord, folder: Path) -> list[Path]:
    """A job across its rounds, into `folder`: every round's reports in `round-N/`, and
    JobReport.csv (the job now) and JobRounds.csv (a SummaryReport row per round) beside
    them. Returns the files written at the top."""
    private_folder(folder)
    for rnd in store.rounds(job.id):
        write_round_reports(store, job, rnd, folder / f"round-{rnd.number}")
    job_file, rounds_file = folder / "JobReport.csv", folder / "JobRounds.csv"
    write_csv(job_file, JOB_COLUMNS, (line.row() for line in job_lines(store, job)))
    write_csv(rounds_file, SUMMARY_COLUMNS, (s.row() for s in round_summaries(store, job)))
    return [job_file, rounds_file]


__all__ = [
    "CATEGORIES",
    "FAILURE_COLUMNS",
    "ITEM_COLUMNS",
    "JOB_COLUMNS",
    "SUMMARY_COLUMNS",
    "ReportFiles",
    "RoundSummary",
    "describe",
    "round_items",
    "summarize",
    "write_csv",
    "write_job_reports",
    "write_round_reports",
]
