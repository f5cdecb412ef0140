"""`sharelift migrate --jobs FILE` (every row of a job file, one summary) and
`sharelift provision` (users' OneDrives, created and waited for)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sharelift.cli.options import Parser, add_options, api_options
from sharelift.errors import ConfigError, OptionError, UsageError
from sharelift.progress import end_line

if TYPE_CHECKING:
    from sharelift.bulk import ReadyCheck
    from sharelift.clouds import Cloud
    from sharelift.credential import Credential
    from sharelift.graph.client import GraphClient
    from sharelift.job import MigrateRequest
    from sharelift.jobs import JobFile
    from sharelift.provision import ProvisionReport


def _error(line: object) -> None:
    print(f"sharelift: error: {line}", file=sys.stderr)


def run_job_file(args: argparse.Namespace) -> int:
    """Validate every row, run the valid ones (one round each), write the summary."""
    import asyncio

    from sharelift.api import migrate_request
    from sharelift.bulk import run_jobs
    from sharelift.cli.connect import connect, method_of
    from sharelift.cli.signals import run_until_signalled
    from sharelift.graph.sharepoint import refuse_secret_sign_in
    from sharelift.jobs import SourceMap, load_job_file
    from sharelift.lock import RunLock, lock_path
    from sharelift.target import TargetSpec

    if args.source or args.target or args.site or args.library:
        raise UsageError("--jobs FILE names sources and targets: give no SOURCE or TARGET")
    job_file = load_job_file(args.jobs, SourceMap(args.map_source))
    for error in job_file.errors:
        _error(error)
    if args.strict and job_file.errors:
        raise ConfigError(f"{args.jobs}: {len(job_file.errors)} bad row(s), nothing run (--strict)")
    if not job_file.jobs:
        raise ConfigError(f"{args.jobs}: no valid rows to run")
    if args.provision and any(j.personal_path for j in job_file.jobs):
        refuse_secret_sign_in("--provision", method_of(args), args.access_token)
    credential = connect(args)
    cloud = credential.cloud
    template = migrate_request(
        "", TargetSpec("drive", ""), credential, api_options(args, "migrate")
    )
    if args.dry_run:
        return preflight(args, job_file, template, credential)

    from sharelift.views import BulkView, bulk_mode

    mode = bulk_mode(args.json, args.quiet)
    view = BulkView([j.name for j in job_file.jobs], mode) if mode is not None else None

    def say(line: str) -> None:
        if view is not None:
            view.say(line)
        elif not args.quiet:
            print(line, file=sys.stderr, flush=True)

    prepare = None
    if args.provision:
        from sharelift.provision import Provisioner, admin_client, provision_for_jobs

        hosts = [j.target.host for j in job_file.jobs if j.personal_path]
        name = sharepoint_tenant(args, cloud, hosts) if hosts else ""

        async def prepare(graph: GraphClient) -> ReadyCheck:
            provisioner = Provisioner(
                graph, timeout=args.provision_timeout, poll_interval=args.poll_interval
            )
            return await provision_for_jobs(
                graph,
                lambda: admin_client(cloud, credential, name, credential.timeouts),
                job_file.jobs,
                provisioner,
            )

    first = "finishing the files in flight, then stopping every job"
    digest = hashlib.sha256(str(job_file.path.resolve()).encode()).hexdigest()[:24]
    with RunLock(lock_path(template.state_path, f"jobs-{digest}"), f"job file {args.jobs}"):
        if view is not None:
            view.start()
        started = time.monotonic()
        try:
            outcome = asyncio.run(
                run_until_signalled(
                    lambda stop: run_jobs(
                        job_file,
                        template,
                        credential,
                        max_parallel=args.max_parallel_jobs,
                        prepare=prepare,
                        say=say,
                        stop=stop,
                        watch=view,
                    ),
                    say,
                    first,
                )
            )
        finally:
            if view is not None:
                view.stop()
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts().items()))
    if args.json:
        doc = {
            "event": "summary",
            "jobs": outcome.counts(),
            "warnings": outcome.warnings,
            "summary": str(outcome.summary_csv),
        }
        print(json.dumps(doc, ensure_ascii=False))
    else:
        warned = f"; {outcome.warnings} warnings (settings not applied)" if outcome.warnings else ""
        print(f"{len(outcome.results)} jobs: {counts}{warned}")
        for result in outcome.results:
            for warning in result.warnings:
                print(f"warning: {result.name}: {warning}")
        sent = sum(
            r.outcome.result.bytes_uploaded
            for r in outcome.results
            if r.outcome is not None and r.outcome.result is not None
        )
        print(end_line(sent, time.monotonic() - started))
        print(f"summary: {outcome.summary_csv}")
    return outcome.exit_code


def preflight(
    args: argparse.Namespace, job_file: JobFile, template: MigrateRequest, credential: Credential
) -> int:
    """`--jobs FILE --dry-run`: every row checked, nothing written; a table (or JSON lines).
    Exit 0 when every row is ready, 1 otherwise."""
    import asyncio

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from sharelift.preflight import preflight_jobs
    from sharelift.progress import human_bytes

    checks = asyncio.run(preflight_jobs(job_file, template, credential))
    ready = sum(c.ready for c in checks)
    warnings = sum(len(c.warnings) for c in checks)
    if args.json:
        for check in checks:
            print(json.dumps(check.to_dict(), ensure_ascii=False))
        doc = {"event": "summary", "rows": len(checks), "ready": ready, "warnings": warnings}
        print(json.dumps(doc, ensure_ascii=False))
    else:
        table = Table(title=f"pre-flight of {escape(str(args.jobs))} (nothing written)")
        for column in ("row", "status", "files", "size", "renamed", "skipped", "blocked"):
            table.add_column(column, justify="left" if column in ("row", "status") else "right")
        for c in checks:
            style = "green" if c.ready else "red"
            table.add_row(
                c.job.rsplit("#", 1)[1],
                f"[{style}]{c.status}",
                f"{c.files:,}",
                human_bytes(c.bytes),
                f"{c.renamed:,}",
                f"{c.skipped:,}",
                f"{c.blocked:,}",
            )
        console = Console()
        console.print(table)
        for c in checks:
            row = c.job.rsplit("#", 1)[1]
            said = f"-> {c.destination}" if c.ready else f"not ready: {c.message}"
            console.print(f"row {row} {escape(said)}", highlight=False, soft_wrap=True)
            for warning in c.warnings:
                console.print(f"row {row} warning: {escape(warning)}", highlight=False)
        console.print(
            f"{ready} of {len(checks)} rows ready"
            + (f"; {warnings} warnings (settings not applied)" if warnings else ""),
            highlight=False,
        )
    return 0 if ready == len(checks) else 1


def sharepoint_tenant(args: argparse.Namespace, cloud: Cloud, hosts: Sequence[str]) -> str:
    """The tenant's SharePoint name (contoso for contoso-admin.sharepoint.com)."""
    from sharelift.provision import tenant_name_from

    if cloud.emulator:
        return str(cloud.emulator.get("tenant", ""))
    name = args.sharepoint_tenant or tenant_name_from(hosts, args.tenant)
    if not name:
        raise OptionError(
            "sharepoint_tenant",
            "provisioning needs the tenant's SharePoint name (contoso for "
            "contoso-admin.sharepoint.com)",
        )
    return str(name)


# --- provision -------------------------------------------------------------------------------


def register_provision(sub: argparse._SubParsersAction[Parser]) -> None:
    p = sub.add_parser(
        "provision",
        help="pre-provision users' OneDrives (in batches of 200) and wait until they exist",
        description="Ask SharePoint to create the OneDrives of the users given (UPN arguments, "
        "--users CSV, or the OneDrive targets of --jobs FILE) and wait until each exists. "
        "Users that have one are skipped; running it again is safe. Needs an app-only "
        "certificate credential that SharePoint accepts. Exit 0: all ready; 1: some failed "
        "(unknown or unlicensed user); 75: some still pending, run again later.",
    )
    p.add_argument("upns", metavar="UPN", nargs="*", help="user principal names")
    add_options(p, "provision")
    p.set_defaults(run=run_provision)


def run_provision(args: argparse.Namespace) -> int:
    import asyncio

    from sharelift.cli.connect import connect, method_of
    from sharelift.graph.client import GraphClient
    from sharelift.graph.pacer import Pacer
    from sharelift.graph.sharepoint import refuse_secret_sign_in
    from sharelift.jobs import load_job_file
    from sharelift.provision import (
        Provisioner,
        admin_client,
        read_upns,
        upns_for_personal_sites,
    )
    from sharelift.views import ProvisionView

    upns = list(args.upns)
    if args.users:
        upns += read_upns(Path(args.users))
    paths: list[str] = []
    hosts: list[str] = []
    if args.jobs:
        # Every row with a OneDrive target counts, whether or not its source is reachable here.
        job_file = load_job_file(args.jobs, check_sources=False)
        for error in job_file.errors:
            _error(error)
        paths = [j.personal_path for j in job_file.jobs if j.personal_path]
        hosts = [j.target.host for j in job_file.jobs if j.personal_path]
    if not upns and not paths:
        raise UsageError("no users: give UPNs, --users FILE or --jobs FILE")
    bad = [u for u in upns if "@" not in u]
    if bad:
        raise UsageError(f"{bad[0]!r} is not a user principal name")
    refuse_secret_sign_in("provision", method_of(args), args.access_token)
    credential = connect(args)
    cloud = credential.cloud
    name = sharepoint_tenant(args, cloud, hosts or [u.partition("@")[2] for u in upns])

    async def token() -> str:
        return await asyncio.to_thread(credential.token)

    async def run() -> ProvisionReport:
        async with GraphClient(
            token=token,
            base_url=cloud.graph_url,
            verify=cloud.ca_file,
            timeouts=credential.timeouts,
            pacer=Pacer(),
            connect=cloud.connect,
        ) as graph:
            found = await upns_for_personal_sites(graph, paths)
            for path in sorted(set(paths) - set(found)):
                _error(f"no user of the tenant owns {path}")
            provisioner = Provisioner(
                graph,
                timeout=0.0 if args.no_wait else args.provision_timeout,
                poll_interval=args.poll_interval,
            )
            view = None
            if not args.json:
                view = ProvisionView(provisioner.progress, rich=sys.stderr.isatty())
                view.start()
            try:
                async with admin_client(cloud, credential, name, credential.timeouts) as admin:
                    return await provisioner.run([*upns, *found.values()], admin)
            finally:
                if view is not None:
                    view.stop()
                await provisioner.aclose()

    report = asyncio.run(run())
    if args.json:
        doc = {"users": [dataclasses.asdict(u) for u in report.users]}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        for user in report.users:
            detail = f" ({user.message})" if user.message else ""
            print(f"{user.status:8} {user.upn}{detail}")
        counts = {s: len(report.by_status(s)) for s in ("ready", "pending", "failed")}
        print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return report.exit_code
