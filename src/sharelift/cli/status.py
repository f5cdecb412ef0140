"""`sharelift status` (jobs, rounds, progress; also during a run) and `sharelift report`
(a round's reports rebuilt from the state store). Both only read the state store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharelift.cli.options import Parser, add_options
from sharelift.errors import OptionError, UsageError

if TYPE_CHECKING:
    from rich.console import Console


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "status",
        help="show jobs, their rounds and progress (also while a run is going)",
        description="Read the state store (never writing to it) and show every job's rounds.",
    )
    add_options(p, "status")
    p.set_defaults(run=run_status)
    p = sub.add_parser(
        "report",
        help="rebuild a round's reports (or every round's) from the state store",
        description="Write ItemReport.csv, FailureSummary.csv, SummaryReport.csv, "
        "JobReport.csv, summary.json and report.html for a job's round (the last one unless "
        "--round), with the figures of the original reports; with --all-rounds, every round "
        "into round-N/ and the job across its rounds (JobReport.csv, JobRounds.csv).",
    )
    add_options(p, "report")
    p.set_defaults(run=run_report)


def _state(args: argparse.Namespace) -> str:
    from sharelift.job import default_state_path

    return str(args.state) if args.state else str(default_state_path())


def run_status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sharelift.state import open_state
    from sharelift.status import cluster_status, job_status
    from sharelift.urls import hide_password

    path = _state(args)
    shown = hide_password(path)
    with open_state(path, readonly=True) as store:
        jobs = [j for j in store.jobs() if args.job is None or j.id == args.job]
        if args.jobs:  # bulk runs name each job FILE#ROW (with the file's absolute path)
            prefix = f"{Path(args.jobs).resolve()}#"
            jobs = [j for j in jobs if str(j.options.get("name", "")).startswith(prefix)]
        if args.job is not None and not jobs:
            raise OptionError("job", f"no job {args.job} in {shown}")
        report = [job_status(store, job) for job in jobs]
        cluster = cluster_status(store)
    if args.json:
        doc = {"state": shown, "jobs": report, **cluster}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    console = Console()
    if not report and not cluster["runs"]:
        console.print(f"no jobs in {shown}")
        return 0
    render_status(console, shown, report)
    _print_cluster(console, cluster)
    return 0


def render_status(console: Console, shown: str | Path, report: list[dict[str, Any]]) -> None:
    """Each job as a line of figures, then where from and where to, each on its own line, so
    that it reads at 80 columns however long the paths are. `shown` names the state store
    (a URL without its password)."""
    from rich.table import Table
    from rich.text import Text

    from sharelift.progress import human_bytes

    console.print(Text(f"sharelift jobs in {shown}", style="bold"), soft_wrap=True)
    for job in report:
        last = job["last_round"] or {}
        figures = Table.grid(padding=(0, 2))
        status = str(last.get("status", "never run"))
        style = "green" if status == "completed" else "yellow" if status == "running" else "red"
        failed = int(job["items"].get("failed", 0))
        figures.add_row(
            Text(f"job {job['id']}", style="bold"),
            f"round {last.get('number', '-')}",
            Text(status, style=style if last else ""),
            f"{last.get('files_done', 0):,}/{last.get('files_total', 0):,} files",
            human_bytes(int(last.get("bytes_done", 0))),
            Text(f"{failed:,} failed", style="red" if failed else ""),
        )
        console.print()
        console.print(figures)
        name = f" ({job['name']})" if job["name"] else ""
        # Folded at the width, not wrapped at a space: a label stays with its long path, and
        # the path's continuation lines line up under its start.
        for label, where in (("from", f"{job['source']}{name}"), ("to  ", job["target"])):
            room = max(console.width - 7, 20)
            for n, start in enumerate(range(0, max(len(where), 1), room)):
                head = f"  {label} " if n == 0 else " " * 7
                console.print(Text(head + where[start : start + room]), highlight=False)


def _print_cluster(console: Console, cluster: dict[str, Any]) -> None:
    """A cluster's runs and workers, when there are any."""
    from rich.table import Table

    if cluster["runs"]:
        runs = Table(title="runs on the cluster")
        for column in ("run", "units done/all", "running", "queued", "failed", "files", "bytes"):
            runs.add_column(column, overflow="fold")
        for run in cluster["runs"]:
            units = run["units"]
            runs.add_row(
                run["run"],
                f"{units['done']}/{sum(units.values())}",
                ", ".join(f"{r['unit']} {r['path']} @{r['owner']}" for r in run["running"]) or "-",
                str(units["queued"]),
                str(units["failed"]),
                f"{run['files_done']}/{run['files_total']}",
                f"{run['bytes_done']:,}",
            )
        console.print(runs)
    if cluster["workers"]:
        workers = Table(title="workers")
        for column in ("worker", "queues", "status", "unit", "heartbeat"):
            workers.add_column(column, overflow="fold")
        for w in cluster["workers"]:
            workers.add_row(
                w["name"],
                ", ".join(w["queues"]),
                w["status"],
                str(w["unit"] or "-"),
                f"{w['heartbeat_age_s']:.0f} s ago",
            )
        console.print(workers)


def run_report(args: argparse.Namespace) -> int:
    from sharelift.report import write_job_reports, write_round_reports
    from sharelift.state import open_state
    from sharelift.urls import hide_password

    path = _state(args)
    with open_state(path, readonly=True) as store:
        jobs = store.jobs()
        if args.job is not None:
            jobs = [j for j in jobs if j.id == args.job]
            if not jobs:
                raise OptionError("job", f"no job {args.job} in {hide_password(path)}")
        if len(jobs) != 1:
            raise UsageError(
                f"{hide_password(path)} holds {len(jobs)} jobs: name one with --job "
                "(see sharelift status)"
            )
        job = jobs[0]
        if args.all_rounds:
            if args.round is not None:
                raise UsageError("--round names one round: leave it out with --all-rounds")
            written = write_job_reports(store, job, Path(args.out))
            print(f"job {job.id}: every round's reports and {written[0].name} in {args.out}")
            return 0
        rounds = store.rounds(job.id)
        chosen = [r for r in rounds if args.round is None or r.number == args.round]
        if not chosen:
            raise OptionError("round", f"job {job.id} has no round {args.round}")
        files, summary = write_round_reports(store, job, chosen[-1], Path(args.out))
    print(
        f"round {summary.round_number} of job {job.id}: {summary.migrated_items} migrated, "
        f"{summary.failed_items} failed; reports in {files.folder}"
    )
    return 0
