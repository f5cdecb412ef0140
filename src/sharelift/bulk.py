"""Many jobs in one run: the valid rows of a job file, concurrently, over one Graph client.

    JobFile ─► run_jobs ─► up to `max_parallel` jobs at a time, each `run_job` over the one
                           shared GraphClient (one pacer for the tenant, DESIGN invariant 7)
            ─► per-job reports (as a single job writes them) + one aggregated summary:
               SummaryReport.csv (a row per job and a Total row, with the run's duration
               and GB/hour) and summary.json

A job that cannot start (its target does not resolve, its OneDrive never appeared, its source
vanished), or that ends in any other error, is recorded as failed with the reason; the other
jobs go on and finish. The jobs run in one task group: nothing outlives `run_jobs`, so the state
store and the Graph client close only after the last job has. Rows rejected while the file was
read are listed in the summary as `invalid`. Nothing here prints except through `say`, and
signals are the caller's: setting `stop` ends every job gracefully.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sharelift.auth import TokenProvider
from sharelift.config import default
from sharelift.errors import ShareliftError
from sharelift.graph.client import GraphClient
from sharelift.graph.pacer import Pacer
from sharelift.job import MigrateOutcome, MigrateRequest, check_report_folder, run_job
from sharelift.jobs import Job, JobFile
from sharelift.private import open_private, private_folder
from sharelift.progress import Renderer
from sharelift.report.summary import (
    TIME_ZONE,
    RoundSummary,
    excel_time,
    gb_per_hour,
    hms,
    seconds_between,
)
from sharelift.state import open_state

log = logging.getLogger("sharelift.bulk")

ReadyCheck = Callable[[Job], Awaitable[str | None]]
"""Awaited before a job starts: None when its target is ready, else why it is not."""
Prepare = Callable[[GraphClient], Awaitable[ReadyCheck]]
"""Run once over the shared client before any job (OneDrive provisioning); gives the check."""


class Watch(Protocol):
    """Who shows a bulk run live (sharelift.views.BulkView): the renderer each job's round
    reports to, and how each job ended."""

    def renderer_for(self, name: str) -> Renderer: ...
    def finished(self, name: str, status: str) -> None: ...


MAX_IN_FLIGHT = 64
"""Requests in flight at once for a whole bulk run, whatever the number of jobs."""

SUMMARY_COLUMNS = [
    "Job",
    "Source",
    "Destination",
    "Status",
    "Message",
    "Total bytes",
    "Count of files",
    "Migrated bytes",
    "Total scanned items",
    "Migrated items",
    "Items not migrated",
    "Skipped items",
    "Failed items",
    "Warning count",
    "Start",
    "End",
    "Duration",
    "GB/hour",
    "Round number",
    "Task ID",
    "Report folder",
    "Log Path",
    "Time zone",
]
_NUMBERS = SUMMARY_COLUMNS[5:14]


@dataclass
class JobResult:
    """What happened to one row: a round ran (`outcome`), or it could not start (`message`)."""

    name: str
    source: str
    destination: str
    status: str
    """completed, completed with failures, failed, interrupted, not started, invalid."""
    message: str = ""
    outcome: MigrateOutcome | None = None
    warnings: tuple[str, ...] = ()
    """Job-file settings the row asks for that sharelift does not apply (`Job.warnings`)."""

    @property
    def ok(self) -> bool:
        return self.status == "completed"


@dataclass
class BulkOutcome:
    """Every row's result and where the aggregated summary is."""

    results: list[JobResult]
    summary_csv: Path
    summary_json: Path

    @property
    def exit_code(self) -> int:
        """0 when every row completed cleanly, 130 when interrupted, else 1."""
        if any(r.status == "interrupted" for r in self.results):
            return 130
        return 0 if all(r.ok for r in self.results) else 1

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    @property
    def warnings(self) -> int:
        """Warnings of every row (settings not applied)."""
        return sum(len(r.warnings) for r in self.results)


async def run_jobs(
    job_file: JobFile,
    template: MigrateRequest,
    credential: TokenProvider,
    *,
    max_parallel: int = default("max_parallel_jobs"),
    prepare: Prepare | None = None,
    say: Callable[[str], None] = lambda line: None,
    stop: asyncio.Event | None = None,
    watch: Watch | None = None,
) -> BulkOutcome:
    """Run every valid job of `job_file` once (one round each) and write the summary.

    `template` carries what all jobs share (endpoints, engine, state store, base scan options,
    report folder); each job's source, target and row settings replace its fields. With
    `template.report_dir`, job reports go to `DIR/row-N` and the summary to DIR; otherwise job
    reports go where a single job's go and the summary to
    `<state folder>/reports/<file stem>-<UTC time>`. `prepare` runs first and returns the
    check each job awaits before it starts (it may wait for the job's OneDrive to exist).
    Setting `stop` lets every running job finish its files in flight and starts no new one;
    cancelling ends every job at once (their rounds recorded as interrupted). `watch` sees
    every job's round live and hears how each ended.
    """
    if max_parallel < 1:
        raise ValueError("max_parallel must be at least 1")
    scopes = [template.endpoints.graph_scope]

    async def token() -> str:
        return await asyncio.to_thread(credential.token, scopes)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = template.report_dir or (
        template.state_path.parent / "reports" / f"{job_file.path.stem}-{stamp}"
    )
    check_report_folder(folder)  # the summary is written there after every job has run
    gate = asyncio.Semaphore(max_parallel)
    stop = stop or asyncio.Event()
    # One pacer for the tenant: --workers per job, and the jobs together at most
    # MAX_IN_FLIGHT requests at once (the pacer lowers that further when Graph throttles).
    workers = template.engine.workers
    pacer = Pacer(max_concurrency=max(workers, min(workers * max_parallel, MAX_IN_FLIGHT)))
    async with GraphClient(
        token=token,
        base_url=template.endpoints.graph_url,
        verify=template.endpoints.ca_file,
        timeouts=template.endpoints.timeouts,
        connect=template.endpoints.connect,
        pacer=pacer,
    ) as client:
        # Sign in once before anything starts: a credential that cannot work (no terminal
        # for a prompt, a missing secret) fails the run at once, not each job in turn.
        await token()
        ready = await prepare(client) if prepare is not None else None
        store = open_state(template.state_path)

        async def one(job: Job) -> JobResult:
            base = JobResult(
                job.name, job.source, str(job.target), "not started", warnings=job.warnings
            )
            try:
                return await attempt(job, base)
            except ShareliftError as exc:
                base.status, base.message = "failed", str(exc)
            except Exception as exc:  # a job's own fault ends that job only, never its siblings
                base.status, base.message = "failed", f"{type(exc).__name__}: {exc}"
            say(f"{job.name}: failed: {base.message}")
            log.warning("%s: failed: %s", job.name, base.message)
            if watch is not None:
                watch.finished(job.name, base.status)
            return base

        async def attempt(job: Job, base: JobResult) -> JobResult:
            if ready is not None:
                why = await ready(job)
                if why is not None:
                    base.status, base.message = "failed", why
                    say(f"{job.name}: not started: {why}")
                    log.warning("%s: not started: %s", job.name, why)
                    if watch is not None:
                        watch.finished(job.name, base.status)
                    return base
            request = replace(
                template,
                source=job.source,
                target=job.target,
                options=job.scan_options(template.options),
                report_dir=(folder / f"row-{job.row}") if template.report_dir else None,
                job_name=f"{job_file.path.resolve()}#{job.row}",
            )
            async with gate:
                if stop.is_set():
                    base.message = "the run was stopped before this job started"
                    return base
                say(f"{job.name}: {job.source_text} -> {job.target}")
                log.info("%s: %s -> %s", job.name, job.source_text, job.target)
                for warning in job.warnings:
                    say(f"{job.name}: warning: {warning}")
                outcome = await run_job(
                    request,
                    credential,
                    client=client,
                    store=store,
                    stop=stop,
                    say=say,
                    renderer=watch.renderer_for(job.name) if watch is not None else None,
                )
            base.outcome = outcome
            base.destination = outcome.target.web_url
            result = outcome.result
            if result is None:
                base.status = "planned"
            elif result.status == "interrupted":
                base.status = "interrupted"
                base.message = result.stopped_by  # a full drive stops its own job only
            elif result.status != "completed" or result.failed:
                base.status = "completed with failures"
            else:
                base.status = "completed"
            say(f"{job.name}: {base.status}")
            log.info("%s: %s", job.name, base.status)
            if watch is not None:
                watch.finished(job.name, base.status)
            return base

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(job)) for job in job_file.jobs]
        finally:
            store.close()
        results = [task.result() for task in tasks]
    results += [
        JobResult(f"{e.file}#{e.row}", "", "", "invalid", message=str(e)) for e in job_file.errors
    ]
    results.sort(key=lambda r: int(r.name.rsplit("#", 1)[1]))
    csv_path, json_path = write_bulk_summary(folder, job_file.path, results)
    return BulkOutcome(results, csv_path, json_path)


def _row(result: JobResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "Job": result.name,
        "Source": result.source,
        "Destination": result.destination,
        "Status": result.status,
        "Message": "; ".join(
            [result.message, *(f"warning: {w}" for w in result.warnings)]
            if result.message
            else [f"warning: {w}" for w in result.warnings]
        ),
    }
    summary = result.outcome.summary if result.outcome else None
    if summary is not None:
        row.update(
            {
                "Total bytes": summary.total_bytes,
                "Count of files": summary.count_of_files,
                "Migrated bytes": summary.migrated_bytes,
                "Total scanned items": summary.total_scanned_items,
                "Migrated items": summary.migrated_items,
                "Items not migrated": summary.items_not_migrated,
                "Skipped items": summary.skipped_items,
                "Failed items": summary.failed_items,
                "Warning count": summary.warning_count,
                "Start": excel_time(summary.start),
                "End": excel_time(summary.end),
                "Duration": hms(summary.duration_seconds),
                "GB/hour": round(summary.gb_per_hour, 3),
                "Round number": summary.round_number,
                "Task ID": summary.task_id,
                "Log Path": summary.log_path,
                "Time zone": TIME_ZONE,
            }
        )
    reports = result.outcome.reports if result.outcome else None
    if reports is not None:
        row["Report folder"] = str(reports.folder)
    return row


def _span(summaries: Sequence[RoundSummary]) -> dict[str, Any]:
    """The Total row's times: from the first job's start to the last one's end (the jobs ran
    side by side), and the bytes migrated per hour of that span."""
    if not summaries:
        return {}
    start = min(s.start for s in summaries)
    end = max((s.end for s in summaries if s.end), default="")
    seconds = seconds_between(start, end)
    migrated = sum(s.migrated_bytes for s in summaries)
    return {
        "Start": excel_time(start),
        "End": excel_time(end),
        "Duration": hms(seconds),
        "GB/hour": round(gb_per_hour(migrated, seconds), 3),
    }


def write_bulk_summary(
    folder: Path, job_file: Path, results: Sequence[JobResult]
) -> tuple[Path, Path]:
    """SummaryReport.csv (a row per job, then a Total row) and summary.json in `folder`,
    readable by their owner only."""
    private_folder(folder)
    rows = [_row(r) for r in results]
    total: dict[str, Any] = {"Job": "Total", "Status": f"{len(results)} jobs"}
    for column in _NUMBERS:
        total[column] = sum(int(r.get(column, 0) or 0) for r in rows)
    total.update(_span([r.outcome.summary for r in results if r.outcome and r.outcome.summary]))
    total["Time zone"] = TIME_ZONE
    csv_path = folder / "SummaryReport.csv"
    with open_private(csv_path, encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, SUMMARY_COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        writer.writerow(total)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    doc = {
        "job_file": str(job_file),
        "jobs": len(results),
        "statuses": statuses,
        "warnings": [f"{r.name}: {w}" for r in results for w in r.warnings],
        "totals": {k.lower().replace(" ", "_"): total[k] for k in _NUMBERS},
        "results": rows,
    }
    json_path = folder / "summary.json"
    with open_private(json_path, encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=2, ensure_ascii=False))
    return csv_path, json_path


__all__ = [
    "BulkOutcome",
    "JobResult",
    "Prepare",
    "ReadyCheck",
    "Watch",
    "run_jobs",
    "write_bulk_summary",
]
