"""The `sharelift` command line: parse arguments, call the library, map errors to exit codes.

Nothing here does real work. Each subcommand is registered by an `_add_<name>` function that
declares its flags and names a `_run_<name>` function; the library does the rest.

Exit codes (also in the README):
    0   the command completed
    1   the command completed with failures (or findings, with --fail-on-findings)
    2   bad arguments, job file or source
    3   authentication failed
    4   the target could not be resolved
    130 interrupted (Ctrl-C / SIGTERM); the next run resumes
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sharelift import __version__
from sharelift.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ConfigError,
    ShareliftError,
    UsageError,
)

if TYPE_CHECKING:
    from sharelift.auth import Credential
    from sharelift.bulk import ReadyCheck
    from sharelift.clouds import Cloud
    from sharelift.engine import EngineConfig
    from sharelift.graph.client import GraphClient
    from sharelift.source import ScanOptions
    from sharelift.target import TargetSpec

Runner = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse that exits with our usage code and a one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand."""
    parser = _Parser(
        prog="sharelift",
        description="Migrate file shares into OneDrive for Business and SharePoint Online.",
    )
    parser.add_argument("--version", action="version", version=f"sharelift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for add in _COMMANDS:
        add(sub)
    return parser


# --- subcommands -------------------------------------------------------------------------------


_COMMANDS: list[Callable[[argparse._SubParsersAction[_Parser]], None]] = []


def _add_source_flags(p: argparse.ArgumentParser) -> None:
    """Filters and the rename policy, shared by scan and migrate."""
    p.add_argument(
        "--rename",
        metavar="POLICY",
        default="underscore",
        help="underscore (default), a single CHAR, fullwidth (look-alikes) or off (skip)",
    )
    p.add_argument("--follow-symlinks", action="store_true", help="follow symbolic links")
    p.add_argument("--skip-hidden", action="store_true", help="leave out dotfiles and hidden items")
    p.add_argument(
        "--include",
        metavar="GLOB",
        action="append",
        default=[],
        help="keep only files matching GLOB (repeatable)",
    )
    p.add_argument(
        "--exclude",
        metavar="GLOB",
        action="append",
        default=[],
        help="leave out files and folders matching GLOB (repeatable)",
    )
    p.add_argument(
        "--skip-extensions",
        metavar="LIST",
        help="leave out files whose last extension is listed (txt:mp3 or txt,mp3)",
    )
    p.add_argument("--modified-after", metavar="DATE", help="keep files modified after DATE")
    p.add_argument(
        "--created-after",
        metavar="DATE",
        help="keep files created after DATE (where the filesystem records it)",
    )


def _scan_options(args: argparse.Namespace, target: str | None = None) -> ScanOptions:
    """ScanOptions from the flags of `_add_source_flags`."""
    from sharelift.source import RenamePolicy, ScanOptions, TargetPrefix

    return ScanOptions(
        follow_symlinks=args.follow_symlinks,
        skip_hidden=args.skip_hidden,
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        skip_extensions=(
            ScanOptions.parse_extensions(args.skip_extensions)
            if args.skip_extensions is not None
            else frozenset()
        ),
        modified_after=(
            ScanOptions.parse_date("--modified-after", args.modified_after)
            if args.modified_after
            else None
        ),
        created_after=(
            ScanOptions.parse_date("--created-after", args.created_after)
            if args.created_after
            else None
        ),
        rename=RenamePolicy.parse(args.rename),
        target=TargetPrefix.parse(target) if target else None,
    )


def _add_scan(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "scan",
        help="check a source tree against OneDrive/SharePoint rules (no network)",
        description="Walk SOURCE read-only and report what will not migrate as it is, and why.",
    )
    p.add_argument("source", metavar="SOURCE", help="folder to scan")
    p.add_argument(
        "target",
        metavar="TARGET",
        nargs="?",
        help="target library or folder URL, onedrive:UPN or /server/relative/path; "
        "its path counts toward the 400-character limit",
    )
    p.add_argument(
        "--report",
        metavar="DIR",
        help="write ScanSummary.csv, ScanReport.csv, "
        "summary.json into DIR (created; must not be inside SOURCE)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _add_source_flags(p)
    p.add_argument(
        "--fail-on-findings",
        action="store_true",
        help="exit 1 when any item has a finding (for CI)",
    )
    p.set_defaults(run=_run_scan)


def _run_scan(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from sharelift.errors import EXIT_FINDINGS, EXIT_OK
    from sharelift.scan import render_summary, run_scan

    options = _scan_options(args, args.target)
    summary = run_scan(args.source, options, report_dir=args.report, target_text=args.target or "")
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
    else:
        render_summary(summary, Console())
    return EXIT_FINDINGS if args.fail_on_findings and summary.has_findings else EXIT_OK


_COMMANDS.append(_add_scan)


# --- connection: cloud, emulator and credentials (shared by every command that signs in) ------


def _add_connection_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument(
        "--emulator",
        metavar="DIR",
        help="talk to the local emulator whose data folder is DIR (env SHARELIFT_EMULATOR)",
    )
    g.add_argument(
        "--cloud",
        default=os.environ.get("SHARELIFT_CLOUD", "global"),
        help="global (default), usgov, usgovdod or china",
    )
    g.add_argument(
        "--profile",
        default=os.environ.get("SHARELIFT_PROFILE", "default"),
        help="a profile saved by `sharelift login` (default: default)",
    )
    g.add_argument(
        "--auth",
        choices=("device_code", "secret", "certificate", "managed_identity", "token"),
        default=os.environ.get("SHARELIFT_AUTH"),
        help="how to sign in (default: the profile's, else device_code; with --emulator, the "
        "emulator's app secret); token reads SHARELIFT_ACCESS_TOKEN",
    )
    g.add_argument(
        "--tenant", default=os.environ.get("SHARELIFT_TENANT", ""), help="tenant id or domain"
    )
    g.add_argument(
        "--client-id",
        default=os.environ.get("SHARELIFT_CLIENT_ID", ""),
        help="the app registration's client id (env SHARELIFT_CLIENT_ID)",
    )
    g.add_argument(
        "--secret-file",
        metavar="FILE",
        default=os.environ.get("SHARELIFT_SECRET_FILE"),
        help="read the client secret from FILE (env SHARELIFT_SECRET_FILE; or set "
        "SHARELIFT_CLIENT_SECRET)",
    )
    g.add_argument(
        "--certificate",
        metavar="FILE",
        default=os.environ.get("SHARELIFT_CERTIFICATE"),
        help="PEM (key + certificate) or PFX for --auth certificate (env SHARELIFT_CERTIFICATE); "
        "its password from SHARELIFT_CERTIFICATE_PASSWORD",
    )
    g.add_argument(
        "--managed-identity-client-id",
        metavar="ID",
        default="",
        help="a user-assigned managed identity's client id",
    )
    g.add_argument(
        "--ca-bundle",
        metavar="FILE",
        default=os.environ.get("SHARELIFT_CA_BUNDLE"),
        help="a CA (PEM) to trust in addition to the system's, e.g. a TLS-inspecting proxy's "
        "(env SHARELIFT_CA_BUNDLE); for Graph, uploads and sign-in alike",
    )


def _connect(
    args: argparse.Namespace, *, interactive_default: bool = True
) -> tuple[Cloud, Credential]:
    """The cloud and a credential from the flags, the environment and the saved profile."""
    from sharelift.auth import AuthSettings, build_credential, load_profile
    from sharelift.clouds import resolve_cloud

    profile = load_profile(args.profile)
    cloud = resolve_cloud(
        args.cloud if args.cloud != "global" or not profile else profile.get("cloud", "global"),
        args.emulator or profile.get("emulator"),
    )
    if args.ca_bundle:  # added to the trust, never replacing it; verification stays on
        from sharelift.auth import trust_bundle

        cloud = dataclasses.replace(cloud, ca_file=trust_bundle(cloud.ca_file, args.ca_bundle))
    method = args.auth or profile.get("auth") or ("secret" if cloud.emulator else "device_code")
    client_id = args.client_id or profile.get("client_id", "")
    tenant = args.tenant or profile.get("tenant", "")
    secret = os.environ.get("SHARELIFT_CLIENT_SECRET", "")
    if args.secret_file:
        try:
            secret = Path(args.secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--secret-file {args.secret_file}: {exc.strerror}") from None
    certificate = args.certificate
    if cloud.emulator:  # the emulator's registered app, unless told otherwise
        client_id = client_id or str(cloud.emulator["client_id"])
        if method == "secret" and not secret:
            secret = str(cloud.emulator.get("client_secret", ""))
        if method == "certificate" and not certificate:
            certificate = _emulator_pem(cloud)
    settings = AuthSettings(
        method=method,
        authority=cloud.authority(tenant) if method not in ("token", "managed_identity") else "",
        client_id=client_id,
        secret=secret,
        certificate_path=Path(certificate) if certificate else None,
        certificate_password=os.environ.get("SHARELIFT_CERTIFICATE_PASSWORD", ""),
        managed_identity_client_id=args.managed_identity_client_id,
        ca_file=cloud.ca_file,
        instance_discovery=cloud.instance_discovery,
        cache_path=_token_cache(args.profile),
    )
    return cloud, build_credential(settings)


def _emulator_pem(cloud: Cloud) -> str:
    """The emulator's app certificate as one PEM (key + certificate) file beside it."""
    cert = cloud.emulator["certificate"]
    combined = Path(cert["key_file"]).with_name("app-combined.pem")
    if not combined.exists():
        data = Path(cert["key_file"]).read_bytes() + Path(cert["cert_file"]).read_bytes()
        fd = os.open(combined, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return str(combined)


def _token_cache(profile: str) -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir("sharelift")) / "tokens" / f"{profile}.json"


# --- migrate ---------------------------------------------------------------------------------


def _add_migrate(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "migrate",
        help="migrate a folder into OneDrive or SharePoint (resumable, verified, incremental)",
        description="Move the contents of SOURCE into TARGET: a OneDrive or SharePoint folder "
        "URL copied from the browser, onedrive:USER@DOMAIN[/folder], drive:ID[/folder], or "
        "--site/--library/--subfolder. Run it again to migrate what changed.",
    )
    p.add_argument(
        "source", metavar="SOURCE", nargs="?", help="the folder to migrate (its contents go)"
    )
    p.add_argument("target", metavar="TARGET", nargs="?", help="where to (see above)")
    b = p.add_argument_group("job files (SPMT / Migration Manager CSV or JSON; see docs/bulk.md)")
    b.add_argument("--jobs", metavar="FILE", help="run every row of a CSV or JSON job file")
    b.add_argument(
        "--map-source",
        metavar="WIN=LOCAL",
        action="append",
        default=[],
        help="map a Windows source prefix to a local folder, e.g. '\\\\fs01\\dept=/mnt/dept' "
        "(repeatable; longest prefix wins; case-insensitive)",
    )
    b.add_argument(
        "--strict", action="store_true", help="refuse the whole job file when any row is bad"
    )
    b.add_argument(
        "--max-parallel-jobs",
        type=int,
        default=4,
        metavar="N",
        help="jobs running at once (4; 1 = one after another)",
    )
    b.add_argument(
        "--provision",
        action="store_true",
        help="create missing OneDrive targets first; each job starts when its OneDrive exists",
    )
    _add_provision_tuning(b)
    t = p.add_argument_group("target as SPMT names it")
    t.add_argument(
        "--site", metavar="URL", help="site URL, e.g. https://contoso.sharepoint.com/sites/Team"
    )
    t.add_argument("--library", metavar="NAME", help="document library (display or URL name)")
    t.add_argument("--subfolder", metavar="PATH", default="", help="folder inside the library")
    p.add_argument(
        "--include-root",
        action="store_true",
        help="put the SOURCE folder itself into the target folder, not only its contents",
    )
    g = p.add_argument_group("existing files at the target")
    mode = g.add_mutually_exclusive_group()
    mode.add_argument(
        "--on-conflict",
        choices=("newer", "overwrite", "rename"),
        default="newer",
        help="newer (default, as SPMT): skip when the target is the same or newer; overwrite; "
        "rename: keep both",
    )
    mode.add_argument(
        "--overwrite",
        dest="on_conflict",
        action="store_const",
        const="overwrite",
        help="same as --on-conflict overwrite",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    p.add_argument(
        "--mirror",
        action="store_true",
        help="also delete at the target (to its recycle bin) what was deleted at the source",
    )
    p.add_argument(
        "--verify-target",
        action="store_true",
        help="reconcile with the target first (delta): restore files deleted or changed there",
    )
    p.add_argument("--state", metavar="PATH", help="the state store (default: user state folder)")
    p.add_argument("--report", metavar="DIR", help="where to write this run's reports")
    p.add_argument("--workers", type=int, default=16, help="concurrent transfers at most (16)")
    p.add_argument(
        "--chunk-size", default="10M", help="upload fragment size, a multiple of 320k (10M)"
    )
    p.add_argument("--json", action="store_true", help="JSON lines: item events, progress, summary")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    _add_source_flags(p)
    _add_connection_flags(p)
    p.set_defaults(run=_run_migrate)


def _target_spec(args: argparse.Namespace) -> TargetSpec:
    from sharelift.target import parse_target, site_triple

    if args.site or args.library:
        if args.target:
            raise UsageError("give TARGET or --site/--library/--subfolder, not both")
        if not (args.site and args.library):
            raise UsageError("--site and --library go together")
        return site_triple(args.site, args.library, args.subfolder)
    if not args.target:
        raise UsageError("TARGET is missing (or give --site and --library)")
    return parse_target(args.target)


def _run_migrate(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from sharelift.engine import EngineConfig
    from sharelift.migrate import (
        Endpoints,
        MigrateRequest,
        default_state_path,
        parse_chunk_size,
        run_job,
    )
    from sharelift.progress import choose_renderer

    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    try:
        engine = EngineConfig(
            chunk_size=parse_chunk_size(args.chunk_size),
            workers=args.workers,
            policy=args.on_conflict,
            mirror=args.mirror,
            verify_target=args.verify_target,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.jobs:
        return _run_migrate_jobs(args, engine)
    if args.provision:
        raise UsageError("--provision goes with --jobs FILE (or use `sharelift provision`)")
    if not args.source:
        raise UsageError("SOURCE is missing (or give --jobs FILE)")
    spec = _target_spec(args)
    options = _scan_options(args)
    cloud, credential = _connect(args)
    request = MigrateRequest(
        source=args.source,
        target=spec,
        endpoints=Endpoints(cloud.graph_url, cloud.graph_scope, cloud.ca_file),
        options=options,
        engine=engine,
        state_path=Path(args.state) if args.state else default_state_path(),
        report_dir=Path(args.report) if args.report else None,
        include_root=args.include_root,
        dry_run=args.dry_run,
    )
    renderer = choose_renderer(args.json, args.quiet or args.dry_run)
    outcome = asyncio.run(run_job(request, credential, renderer=renderer))
    if args.json:
        doc: dict[str, object] = {"event": "summary", "target": outcome.target.web_url}
        if outcome.summary is not None:
            doc["summary"] = dataclasses.asdict(outcome.summary)
            doc["reports"] = str(outcome.reports.folder) if outcome.reports else None
        else:
            doc["plan"] = outcome.plan_counts
        print(json.dumps(doc, ensure_ascii=False))
    elif outcome.result is not None:
        r = outcome.result
        print(
            f"{r.status}: {r.uploaded} uploaded, {r.adopted} already at the target, "
            f"{r.unchanged} unchanged, {r.skipped} skipped, {r.failed} failed"
            + (f", {r.deleted} deleted" if r.deleted else "")
        )
        print(f"target:  {outcome.target.web_url}")
        if outcome.reports is not None:
            print(f"reports: {outcome.reports.folder}")
    return outcome.exit_code


def _run_migrate_jobs(args: argparse.Namespace, engine: EngineConfig) -> int:
    """`migrate --jobs FILE`: validate every row, run the valid ones, write the summary."""
    import asyncio
    import hashlib
    import json

    from sharelift.bulk import run_jobs
    from sharelift.jobs import SourceMap, load_job_file
    from sharelift.lock import RunLock, lock_path
    from sharelift.migrate import Endpoints, MigrateRequest, default_state_path
    from sharelift.target import TargetSpec

    if args.source or args.target or args.site or args.library:
        raise UsageError("--jobs FILE names sources and targets: give no SOURCE or TARGET")
    if args.max_parallel_jobs < 1:
        raise UsageError("--max-parallel-jobs must be at least 1")
    if args.dry_run:
        raise UsageError(
            "--dry-run plans one job: give a row's SOURCE and TARGET instead of --jobs"
        )
    job_file = load_job_file(args.jobs, SourceMap(args.map_source), strict=args.strict)
    for error in job_file.errors:
        print(f"sharelift: error: {error}", file=sys.stderr)
    if not job_file.jobs:
        raise ConfigError(f"{args.jobs}: no valid rows to run")
    options = _scan_options(args)
    cloud, credential = _connect(args)
    template = MigrateRequest(
        source="",
        target=TargetSpec("drive", ""),
        endpoints=Endpoints(cloud.graph_url, cloud.graph_scope, cloud.ca_file),
        options=options,
        engine=engine,
        state_path=Path(args.state) if args.state else default_state_path(),
        report_dir=Path(args.report) if args.report else None,
        include_root=args.include_root,
    )

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    prepare = None
    if args.provision:
        from sharelift.provision import Provisioner, admin_client, provision_for_jobs

        hosts = [j.target.host for j in job_file.jobs if j.personal_path]
        name = _sharepoint_tenant(args, cloud, hosts) if hosts else ""

        async def prepare(graph: GraphClient) -> ReadyCheck:
            provisioner = Provisioner(
                graph, timeout=args.provision_timeout, poll_interval=args.poll_interval
            )
            return await provision_for_jobs(
                graph,
                lambda: admin_client(cloud, credential, name),
                job_file.jobs,
                provisioner,
            )

    digest = hashlib.sha256(str(job_file.path.resolve()).encode()).hexdigest()[:24]
    with RunLock(lock_path(template.state_path, f"jobs-{digest}"), f"job file {args.jobs}"):
        outcome = asyncio.run(
            run_jobs(
                job_file,
                template,
                credential,
                max_parallel=args.max_parallel_jobs,
                prepare=prepare,
                say=say,
            )
        )
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts().items()))
    if args.json:
        doc = {"event": "summary", "jobs": outcome.counts(), "summary": str(outcome.summary_csv)}
        print(json.dumps(doc, ensure_ascii=False))
    else:
        print(f"{len(outcome.results)} jobs: {counts}")
        print(f"summary: {outcome.summary_csv}")
    return outcome.exit_code


_COMMANDS.append(_add_migrate)


# --- provision -------------------------------------------------------------------------------


def _add_provision_tuning(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--provision-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for requested OneDrives (600)",
    )
    g.add_argument(
        "--poll-interval",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="time between checks for requested OneDrives (15)",
    )
    g.add_argument(
        "--sharepoint-tenant",
        metavar="NAME",
        default=os.environ.get("SHARELIFT_SHAREPOINT_TENANT", ""),
        help="the tenant's SharePoint name, contoso for contoso-admin.sharepoint.com "
        "(default: from the targets or a NAME.onmicrosoft.com --tenant)",
    )


def _sharepoint_tenant(args: argparse.Namespace, cloud: Cloud, hosts: Sequence[str]) -> str:
    from sharelift.provision import tenant_name_from

    if cloud.emulator:
        return str(cloud.emulator.get("tenant", ""))
    name = args.sharepoint_tenant or tenant_name_from(hosts, args.tenant)
    if not name:
        raise UsageError(
            "provisioning needs the tenant's SharePoint name: give --sharepoint-tenant NAME "
            "(contoso for contoso-admin.sharepoint.com)"
        )
    return name


def _add_provision(sub: argparse._SubParsersAction[_Parser]) -> None:
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
    p.add_argument("--users", metavar="FILE", help="CSV with a upn (or email) column")
    p.add_argument(
        "--jobs", metavar="FILE", help="the OneDrive targets of a job file (sources not read)"
    )
    p.add_argument("--no-wait", action="store_true", help="ask, check once, do not wait")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    g = p.add_argument_group("provisioning")
    _add_provision_tuning(g)
    _add_connection_flags(p)
    p.set_defaults(run=_run_provision)


def _run_provision(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from sharelift.graph.client import GraphClient
    from sharelift.graph.pacer import Pacer
    from sharelift.jobs import load_job_file
    from sharelift.provision import (
        Provisioner,
        ProvisionReport,
        admin_client,
        read_upns,
        upns_for_personal_sites,
    )

    upns = list(args.upns)
    if args.users:
        upns += read_upns(Path(args.users))
    paths: list[str] = []
    hosts: list[str] = []
    if args.jobs:
        # Every row with a OneDrive target counts, whether or not its source is reachable here.
        job_file = load_job_file(args.jobs, check_sources=False)
        for error in job_file.errors:
            print(f"sharelift: error: {error}", file=sys.stderr)
        paths = [j.personal_path for j in job_file.jobs if j.personal_path]
        hosts = [j.target.host for j in job_file.jobs if j.personal_path]
    if not upns and not paths:
        raise UsageError("no users: give UPNs, --users FILE or --jobs FILE")
    bad = [u for u in upns if "@" not in u]
    if bad:
        raise UsageError(f"{bad[0]!r} is not a user principal name")
    cloud, credential = _connect(args)
    name = _sharepoint_tenant(args, cloud, hosts or [u.partition("@")[2] for u in upns])
    scopes = [cloud.graph_scope]

    async def token() -> str:
        return await asyncio.to_thread(credential.token, scopes)

    async def run() -> ProvisionReport:
        async with GraphClient(
            token=token, base_url=cloud.graph_url, verify=cloud.ca_file, pacer=Pacer()
        ) as graph:
            found = await upns_for_personal_sites(graph, paths)
            for path in sorted(set(paths) - set(found)):
                print(f"sharelift: error: no user of the tenant owns {path}", file=sys.stderr)
            provisioner = Provisioner(
                graph,
                timeout=0.0 if args.no_wait else args.provision_timeout,
                poll_interval=args.poll_interval,
            )
            try:
                async with admin_client(cloud, credential, name) as admin:
                    return await provisioner.run([*upns, *found.values()], admin)
            finally:
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


_COMMANDS.append(_add_provision)


# --- emulator --------------------------------------------------------------------------------


def _add_emulator(sub: argparse._SubParsersAction[_Parser]) -> None:
    from pathlib import Path

    p = sub.add_parser(
        "emulator",
        help="serve a local Microsoft 365 tenant (Graph, sign-in, SharePoint REST) over HTTPS",
        description="Serve a local Microsoft 365 tenant over HTTPS. On first start it creates "
        "its CA, server certificate, app registration and users in DIR; DIR/emulator.json "
        "tells clients (and `--emulator DIR`) where and how to connect.",
    )
    p.add_argument("--data", required=True, metavar="DIR", type=Path, help="data folder")
    p.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--tenant", default="contoso", help="tenant name (default: contoso)")
    p.add_argument(
        "--users",
        metavar="FILE",
        type=Path,
        help="CSV (upn,display_name,licensed,onedrive) or JSON list of users to create",
    )
    f = p.add_argument_group("faults")
    f.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    f.add_argument(
        "--bandwidth", type=int, default=0, metavar="BYTES_PER_S", help="tenant-wide body cap"
    )
    f.add_argument("--ru-per-minute", type=int, default=0, help="resource units per app per minute")
    f.add_argument("--error-rate", type=float, default=0.0, help="probability of a 500/503")
    f.add_argument(
        "--drop-rate", type=float, default=0.0, help="probability of a dropped connection"
    )
    f.add_argument(
        "--fault-seed",
        type=int,
        metavar="N",
        help="seed of the random faults, to replay a run (default: a random one, shown by "
        "GET /_emulator/faults)",
    )
    f.add_argument(
        "--session-lifetime",
        type=float,
        default=15 * 60,
        metavar="SECONDS",
        help="upload-session lifetime after its last fragment (default 900)",
    )
    f.add_argument(
        "--provisioning-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="time before a requested OneDrive exists (default 0)",
    )
    f.add_argument(
        "--migration-api",
        choices=["lazy", "start", "off"],
        default="lazy",
        help="the Migration API service: Azurite starts when first needed (lazy, default), "
        "at start-up, or never",
    )
    p.set_defaults(run=_run_emulator)


def _run_emulator(args: argparse.Namespace) -> int:
    import signal

    from sharelift.emulator.server import EmulatorServer
    from sharelift.emulator.settings import EmulatorSettings, Faults
    from sharelift.errors import UsageError

    try:
        faults = Faults()
        faults.update(
            {
                "latency_ms": args.latency_ms,
                "bandwidth_bps": args.bandwidth,
                "ru_per_minute": args.ru_per_minute,
                "error_rate": args.error_rate,
                "drop_rate": args.drop_rate,
                **({} if args.fault_seed is None else {"seed": args.fault_seed}),
            }
        )
    except ValueError as exc:
        raise UsageError(str(exc).replace("_", "-")) from None
    if args.session_lifetime <= 0 or args.provisioning_delay < 0:
        raise UsageError("--session-lifetime must be positive, --provisioning-delay not negative")
    settings = EmulatorSettings(
        data_dir=args.data,
        host=args.host,
        port=args.port,
        tenant=args.tenant,
        users_file=args.users,
        upload_session_lifetime_s=args.session_lifetime,
        provisioning_delay_s=args.provisioning_delay,
        migration_api=args.migration_api,
        faults=faults,
    )
    server = EmulatorServer(settings)

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        server.start()
        info = server.info
        print(f"sharelift emulator for tenant {info['tenant']} ({info['tenant_id']})")
        print(f"  base URL        {info['base_url']}")
        print(f"  Graph           {info['graph_url']}")
        print(f"  CA certificate  {info['ca_file']}")
        print(f"  emulator.json   {server.data_dir / 'emulator.json'}")
        print(f"  use it with     sharelift ... --emulator {server.data_dir}")
        print("Press Ctrl-C to stop.", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("sharelift emulator: stopped", file=sys.stderr)
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


_COMMANDS.append(_add_emulator)


# --- status and report -----------------------------------------------------------------------


def _add_status(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "status",
        help="show jobs, their rounds and progress (also while a run is going)",
        description="Read the state store (never writing to it) and show every job's rounds.",
    )
    p.add_argument("--state", metavar="PATH", help="the state store (default: user state folder)")
    p.add_argument("--job", type=int, metavar="ID", help="only this job")
    p.add_argument(
        "--jobs", metavar="FILE", help="only the jobs of this job file (one line per row)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_run_status)


def _run_status(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from sharelift.migrate import default_state_path
    from sharelift.state import open_state
    from sharelift.status import job_status

    path = Path(args.state) if args.state else default_state_path()
    with open_state(path, readonly=True) as store:
        jobs = [j for j in store.jobs() if args.job is None or j.id == args.job]
        if args.jobs:  # bulk runs name each job FILE#ROW (with the file's absolute path)
            prefix = f"{Path(args.jobs).resolve()}#"
            jobs = [j for j in jobs if str(j.options.get("name", "")).startswith(prefix)]
        if args.job is not None and not jobs:
            raise UsageError(f"--job {args.job}: no such job in {path}")
        report = [job_status(store, job) for job in jobs]
    if args.json:
        print(json.dumps({"state": str(path), "jobs": report}, indent=2, ensure_ascii=False))
        return 0
    console = Console()
    if not report:
        console.print(f"no jobs in {path}")
        return 0
    table = Table(title=f"sharelift jobs ({path})")
    for column in ("job", "source", "target", "round", "status", "files", "bytes", "failed"):
        table.add_column(column, overflow="fold")
    for job in report:
        last = job["last_round"] or {}
        table.add_row(
            str(job["id"]),
            job["source"],
            job["target"],
            str(last.get("number", "-")),
            str(last.get("status", "never run")),
            f"{last.get('files_done', 0)}/{last.get('files_total', 0)}",
            f"{last.get('bytes_done', 0):,}",
            str(job["items"].get("failed", 0)),
        )
    console.print(table)
    return 0


def _add_report(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild a round's reports from the state store",
        description="Write ItemReport.csv, FailureSummary.csv, SummaryReport.csv and "
        "summary.json for a job's round (the last one unless --round).",
    )
    p.add_argument("--state", metavar="PATH", help="the state store (default: user state folder)")
    p.add_argument("--job", type=int, metavar="ID", help="the job (needed when there are several)")
    p.add_argument("--round", type=int, metavar="N", help="the round number (default: last)")
    p.add_argument("--out", metavar="DIR", required=True, help="where to write the reports")
    p.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from sharelift.migrate import default_state_path
    from sharelift.report import write_round_reports
    from sharelift.state import open_state

    path = Path(args.state) if args.state else default_state_path()
    with open_state(path, readonly=True) as store:
        jobs = store.jobs()
        if args.job is not None:
            jobs = [j for j in jobs if j.id == args.job]
        if len(jobs) != 1:
            raise UsageError(
                f"--job {args.job}: no such job in {path}"
                if args.job is not None
                else f"{path} holds {len(jobs)} jobs: name one with --job (see sharelift status)"
            )
        job = jobs[0]
        rounds = store.rounds(job.id)
        chosen = [r for r in rounds if args.round is None or r.number == args.round]
        if not chosen:
            raise UsageError(f"job {job.id} has no round {args.round}")
        files, summary = write_round_reports(store, job, chosen[-1], Path(args.out))
    print(
        f"round {summary.round_number} of job {job.id}: {summary.migrated_items} migrated, "
        f"{summary.failed_items} failed; reports in {files.folder}"
    )
    return 0


# --- login and logout ------------------------------------------------------------------------


def _add_login(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "login",
        help="sign in once and save a profile (device code for people, or an app's settings)",
        description="Save where and how to sign in as a profile, and sign in now to check it. "
        "For device code, the refresh token is kept in a private token cache so later runs "
        "need no prompt.",
    )
    _add_connection_flags(p)
    p.set_defaults(run=_run_login)


def _run_login(args: argparse.Namespace) -> int:
    from sharelift.auth import save_profile

    cloud, credential = _connect(args)
    credential.token([cloud.graph_scope])
    values = {
        "cloud": cloud.name if not cloud.emulator else "",
        "emulator": str(Path(args.emulator).resolve()) if args.emulator else "",
        "auth": args.auth or ("secret" if cloud.emulator else "device_code"),
        "tenant": args.tenant,
        "client_id": args.client_id,
        "certificate": str(Path(args.certificate).resolve()) if args.certificate else "",
    }
    where = save_profile(args.profile, values)
    accounts: list[str] = getattr(credential, "accounts", list)()
    who = f" as {', '.join(accounts)}" if accounts else ""
    print(f"signed in{who}; profile {args.profile!r} saved in {where}")
    return 0


def _add_logout(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("logout", help="forget a profile and its cached tokens")
    p.add_argument("--profile", default="default", help="the profile (default: default)")
    p.set_defaults(run=_run_logout)


def _run_logout(args: argparse.Namespace) -> int:
    from sharelift.auth import delete_profile

    cache = _token_cache(args.profile)
    had_cache = cache.exists()
    cache.unlink(missing_ok=True)
    had_profile = delete_profile(args.profile)
    if had_cache or had_profile:
        print(f"profile {args.profile!r} and its tokens forgotten")
    else:
        print(f"no profile {args.profile!r}")
    return 0


_COMMANDS.extend([_add_status, _add_report, _add_login, _add_logout])


# --- demo ------------------------------------------------------------------------------------


def _add_demo(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "demo",
        help="migrate a sample share into the built-in emulator and show the report",
        description="Start the emulator in this process, create a sample share with names "
        "that need fixing, scan it, migrate it, print the report, then run again to show an "
        "incremental round. Everything is kept in --dir.",
    )
    p.add_argument(
        "--dir", default="sharelift-demo", metavar="DIR", help="working folder (./sharelift-demo)"
    )
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from sharelift.demo import run_demo

    return run_demo(Path(args.dir))


_COMMANDS.append(_add_demo)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    runner: Runner = args.run
    try:
        return runner(args)
    except ShareliftError as exc:
        print(f"sharelift: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("sharelift: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
