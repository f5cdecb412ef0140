"""`sharelift migrate SOURCE TARGET`: one job through `sharelift.migrate_async`, with a progress
display, Ctrl-C handling and the exit code; `--jobs FILE` is handed to sharelift.cli.jobs, and
`--broker URL` (a cluster's workers run the jobs) to sharelift.cli.cluster."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

from sharelift.cli.options import Parser, add_options, api_options
from sharelift.errors import (
    EXIT_FINDINGS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TEMPFAIL,
    OptionError,
    UsageError,
)
from sharelift.progress import (
    MessageEvent,
    PlanEvent,
    Snapshot,
    SnapshotEvent,
    Tally,
    end_line,
)

if TYPE_CHECKING:
    import asyncio

    from sharelift.api import MigrationResult
    from sharelift.progress import ProgressEvent, Renderer


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "migrate",
        help="migrate a folder into OneDrive or SharePoint (resumable, verified, incremental)",
        description="Move the contents of SOURCE into TARGET: a OneDrive or SharePoint folder "
        "URL copied from the browser, onedrive:USER@DOMAIN[/folder], drive:ID[/folder], or "
        "--site/--library/--subfolder. Run it again to migrate what changed. With --jobs FILE, "
        "every row of an SPMT / Migration Manager job file (docs/bulk.md).",
    )
    p.add_argument(
        "source", metavar="SOURCE", nargs="?", help="the folder to migrate (its contents go)"
    )
    p.add_argument("target", metavar="TARGET", nargs="?", help="where to (see above)")
    add_options(p, "migrate")
    p.set_defaults(run=run)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def exit_code(result: MigrationResult) -> int:
    """75 when the target made the round stop (a full drive: free space, run again), 130 for
    an interrupted round, 1 when it failed or some items did, else 0."""
    if result.stopped_by:
        return EXIT_TEMPFAIL
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if result.ok else EXIT_FINDINGS


def run(args: argparse.Namespace) -> int:
    from sharelift.cli.dashboard import beside_run, state_path

    with beside_run(args.dashboard, state_path(args)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from sharelift.api import migrate_async
    from sharelift.cli.connect import connect
    from sharelift.cli.signals import run_until_signalled
    from sharelift.target import parse_target
    from sharelift.views import choose_renderer

    if args.broker:
        from sharelift.cli.cluster import run_migrate

        return run_migrate(args)
    from sharelift.urls import hide_password, is_url

    if args.state and is_url(args.state):
        raise OptionError(
            "state",
            f"{hide_password(args.state)} serves a cluster: hand the jobs to its workers "
            "(--broker), or give a file for a run on this machine",
        )
    if args.jobs:
        from sharelift.cli.jobs import run_job_file

        return run_job_file(args)
    if args.provision:
        raise UsageError("--provision goes with --jobs FILE (or use `sharelift provision`)")
    if not args.source:
        raise UsageError("SOURCE is missing (or give --jobs FILE)")
    if args.site or args.library:
        if args.target:
            raise UsageError("give TARGET or --site/--library/--subfolder, not both")
        if not (args.site and args.library):
            raise UsageError("--site and --library go together")
    elif not args.target:
        raise UsageError("TARGET is missing (or give --site and --library)")
    else:
        parse_target(args.target)  # a malformed TARGET is refused before anyone signs in
    credential = connect(args)
    renderer = choose_renderer(args.json, args.quiet or args.dry_run)
    display = Display(renderer, json_lines=args.json)
    # Quiet runs subscribe nothing: the engine then builds no event per file.
    subscribers = [display.receive] if renderer is not None or args.dry_run else []

    async def work(stop: asyncio.Event) -> MigrationResult:
        return await migrate_async(
            args.source,
            args.target,
            credential=credential,
            progress=subscribers,
            stop=stop,
            **api_options(args, "migrate"),
        )

    first = (
        "finishing the files in flight, then stopping (again to stop at once); the next run resumes"
    )
    try:
        result = asyncio.run(run_until_signalled(work, say, first))
    finally:
        display.close()
    if result.stopped_by:
        say(f"sharelift: stopped: {result.stopped_by}")
    if args.json:
        doc: dict[str, object] = {"event": "summary", "target": result.target}
        if result.status != "planned":
            doc["summary"] = dict(result.summary)
            doc["reports"] = str(result.reports) if result.reports else None
        else:
            doc["plan"] = dict(result.planned)
        print(json.dumps(doc, ensure_ascii=False))
    elif result.status != "planned":
        print(
            f"{result.status}: {result.uploaded} uploaded, {result.adopted} already at the "
            f"target, {result.unchanged} unchanged, {result.skipped} skipped, "
            f"{result.failed} failed" + (f", {result.deleted} deleted" if result.deleted else "")
        )
        print(end_line(result.bytes_uploaded, float(result.summary.get("duration_seconds", 0.0))))
        print(f"target:  {result.target}")
        if result.reports is not None:
            print(f"reports: {result.reports}")
    return exit_code(result)


class _Mirror(Tally):
    """A Tally whose snapshot is the last snapshot event received, and which passes the
    library's other events on to its own subscribers: the display renderers (rich, plain
    lines, JSON lines) sample it on their own clocks."""

    latest: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        return self.latest if self.latest is not None else super().snapshot()


class Display:
    """Progress events of the library shown by a renderer (None: only messages, on stderr).
    The renderer starts with the first event, so a run that never starts shows nothing. With
    `json_lines`, a dry run's plan is a JSON object per item on stdout (and its text lines are
    not shown)."""

    def __init__(self, renderer: Renderer | None, *, json_lines: bool = False) -> None:
        self._renderer = renderer
        self._json = json_lines
        self._mirror = _Mirror()
        self._started = False

    def receive(self, event: ProgressEvent) -> None:
        if isinstance(event, PlanEvent):
            if self._json:
                doc = {"event": "plan", **dataclasses.asdict(event)}
                print(json.dumps(doc, ensure_ascii=False), flush=True)
            return
        if isinstance(event, MessageEvent):
            if not self._json:
                say(event.text)
            return
        if self._renderer is None:
            return
        if not self._started:
            self._renderer.start(self._mirror)
            self._started = True
        if isinstance(event, SnapshotEvent):
            self._mirror.latest = event.snapshot
        else:
            self._mirror.publish(event)

    def close(self) -> None:
        if self._renderer is not None and self._started:
            self._renderer.stop()
