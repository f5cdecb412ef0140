"""`sharelift worker` (a worker of a cluster) and `sharelift migrate --broker` (jobs handed to
the workers, then followed): the command line over `sharelift.cluster`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sharelift.cli.options import Parser, add_options, api_options
from sharelift.errors import EXIT_INTERRUPTED, ConfigError, OptionError, UsageError
from sharelift.option_kinds import MIB

if TYPE_CHECKING:
    from sharelift.bulk import JobResult
    from sharelift.cluster.coordinator import ClusterJob


def register_worker(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "worker",
        help="run units of work for a cluster (one unit at a time), until stopped",
        description="Take units of work from the broker's queue (--queue GROUP) and run them "
        "against Microsoft 365 with this machine's own credential; progress, leases and "
        "heartbeats go to the shared state store (--state postgresql://...). SIGTERM stops the "
        "unit in flight gracefully and hands it back (docs/scale-out.md).",
    )
    add_options(p, "worker")
    p.set_defaults(run=run_worker)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_worker(args: argparse.Namespace) -> int:
    from sharelift.cli.connect import connect
    from sharelift.cluster.worker import serve

    if not args.broker:
        raise UsageError("a worker needs --broker redis://HOST:PORT/DB")
    if not args.state:
        raise UsageError("a worker needs the cluster's --state postgresql://...")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    credential = connect(args)
    return serve(
        broker=args.broker,
        state=args.state,
        queues=[args.queue],
        credential=credential,
        lease_ttl=args.lease_ttl,
        heartbeat=args.heartbeat,
        visibility_timeout=args.visibility_timeout,
        say=say,
    )


def _jobs(args: argparse.Namespace) -> tuple[list[ClusterJob], Path | None]:
    from sharelift.api import _target_spec
    from sharelift.cluster.coordinator import ClusterJob
    from sharelift.cluster.specs import JobSpec
    from sharelift.cluster.worker import check_queue
    from sharelift.jobs import SourceMap, load_job_file

    values = api_options(args, "migrate")
    if values.get("via") == "migration-api":
        if values.get("on_conflict") == "rename":
            raise OptionError(
                "on_conflict", "rename cannot go with via migration-api (a package replaces a file)"
            )
        if values.get("migration_storage"):
            # A secret never travels to the workers, and they take no storage account of
            # their own yet: refused rather than silently replaced by provided containers.
            raise OptionError(
                "migration_storage",
                "your own storage account is not used on a cluster yet (docs/scale-out.md): "
                "leave it out (SharePoint provides the containers) or run on one machine",
            )
    sizes = {"unit_files": args.unit_files, "unit_bytes": args.unit_mb * MIB}
    if not args.jobs:
        if not args.source:
            raise UsageError("SOURCE is missing (or give --jobs FILE)")
        target = _target_spec(args.target, args.site, args.library, args.subfolder)
        job = JobSpec.make(args.source, target, args.source, values, **sizes)
        return [ClusterJob(job, check_queue(args.queue))], None
    if args.source or args.target or args.site or args.library:
        raise UsageError("--jobs FILE names sources and targets: give no SOURCE or TARGET")
    job_file = load_job_file(args.jobs, SourceMap(args.map_source), strict=args.strict)
    for error in job_file.errors:
        print(f"sharelift: error: {error}", file=sys.stderr)
    if not job_file.jobs:
        raise ConfigError(f"{args.jobs}: no valid rows to run")
    out = []
    for row in job_file.jobs:
        name = f"{job_file.path.resolve()}#{row.row}"
        spec = JobSpec.make(row.source, row.target, name, values, row.options, **sizes)
        out.append(ClusterJob(spec, check_queue(row.group or args.queue)))
    return out, job_file.path


def run_migrate(args: argparse.Namespace) -> int:
    """`migrate --broker`: hand the jobs to the workers, follow the run, write the reports."""
    from sharelift.bulk import BulkOutcome, write_bulk_summary
    from sharelift.cluster.app import make_app, publish
    from sharelift.cluster.coordinator import Progress, new_run, over, results, sample, submit
    from sharelift.cluster.worker import check_broker
    from sharelift.job import default_state_path
    from sharelift.state import open_state
    from sharelift.urls import hide_password
    from sharelift.views import choose_renderer

    if args.dry_run:
        raise UsageError("--dry-run plans on this machine: leave out --broker")
    if args.provision:
        raise UsageError("--provision runs on this machine: run `sharelift provision` first")
    check_broker(args.broker)
    jobs, job_file = _jobs(args)
    state = args.state or str(default_state_path())
    run = new_run()
    app = make_app(args.broker)
    with open_state(state) as store:
        submit(store, lambda unit, queue: publish(app, unit, queue), jobs, run)
    queues = sorted({j.queue for j in jobs})
    say(
        f"run {run}: {len(jobs)} job(s) handed to the workers of {', '.join(queues)} "
        f"({hide_password(args.broker)}); following it in {hide_password(state)}"
    )
    progress = Progress()
    renderer = choose_renderer(args.json, args.quiet)
    interrupted = False
    with open_state(state) as store:
        progress.refresh(store, run)
        if renderer is not None:
            renderer.start(progress)
        try:
            ticks = 0
            while not over(store, run):
                time.sleep(1.0)
                progress.refresh(store, run)
                ticks += 1
                if ticks % 5 == 0:
                    sample(store, run)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if renderer is not None:
                renderer.stop()
    if interrupted:
        say(f"run {run} goes on on the workers; `sharelift status --state ...` follows it")
        return EXIT_INTERRUPTED
    folder = Path(args.report) if args.report else default_state_path().parent / "reports" / run
    with open_state(state) as store:
        done = results(store, run, folder)
    summary_csv, _ = write_bulk_summary(folder, job_file or Path(f"run-{run}"), done)
    outcome = BulkOutcome(done, summary_csv, folder / "summary.json")
    _print(args, run, done, outcome)
    return outcome.exit_code


def _print(args: argparse.Namespace, run: str, done: list[JobResult], outcome: object) -> None:
    from sharelift.bulk import BulkOutcome

    assert isinstance(outcome, BulkOutcome)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts().items()))
    if args.json:
        doc = {"event": "summary", "run": run, "jobs": outcome.counts(),
               "summary": str(outcome.summary_csv)}  # fmt: skip
        print(json.dumps(doc, ensure_ascii=False))
        return
    for result in done:
        detail = f": {result.message}" if result.message else ""
        print(f"{result.name}: {result.status}{detail}")
    print(f"run {run}: {len(done)} jobs: {counts}")
    print(f"summary: {outcome.summary_csv}")
