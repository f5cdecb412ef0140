"""One migration job, end to end: resolve the target, open the state, run a round, report.

This is the engine room behind `sharelift.migrate()` (sharelift.api) and bulk runs
(sharelift.bulk). It wires the parts together in one place:

    credential ─► GraphClient (HTTP/2, tenant pacer) ─► resolve_target ─► StateStore job
        ─► Engine round (progress tally; `stop` ends it gracefully, cancelling ends it now)
        ─► reports (ItemReport, FailureSummary, SummaryReport, JobReport, summary.json,
       report.html)

A dry run resolves the target and plans from the source and the state store, then tells `say`
what would happen; it writes nothing anywhere (the state store is opened read-only, if it
exists). Nothing here prints, installs signal handlers or exits: the caller decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import platformdirs

from sharelift.auth import TokenProvider
from sharelift.clouds import Cloud
from sharelift.engine import Engine, EngineConfig, RoundResult
from sharelift.engine.mover import MoverFactory
from sharelift.errors import OptionError
from sharelift.graph.client import GraphClient
from sharelift.graph.drive import DriveClient
from sharelift.graph.pacer import Pacer
from sharelift.lock import RunLock, lock_path
from sharelift.logs import current_file
from sharelift.network import Timeouts
from sharelift.plan import Action
from sharelift.private import private_folder
from sharelift.progress import PlanEvent, Renderer, Tally
from sharelift.report import ReportFiles, RoundSummary, write_round_reports
from sharelift.source.pipeline import plan_tree
from sharelift.source.rules import TargetPrefix, fix_name
from sharelift.source.walk import ScanOptions, check_source
from sharelift.state import StateStore, open_state
from sharelift.target import ResolvedTarget, TargetSpec, find_folder, resolve_target

log = logging.getLogger("sharelift.job")


def default_state_path() -> Path:
    """Where the state store lives unless --state says otherwise."""
    return Path(platformdirs.user_state_dir("sharelift")) / "state.db"


@dataclass(frozen=True)
class Endpoints:
    """Where Graph is and how to reach it (from the cloud, or the emulator)."""

    graph_url: str
    graph_scope: str
    ca_file: str | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    connect: Mapping[str, str] = field(default_factory=dict)
    """Host -> address to connect to instead (the emulator's SharePoint hosts)."""


@dataclass(frozen=True)
class MigrationApiOptions:
    """`--via migration-api`: what the Migration API mover needs besides the credential."""

    cloud: Cloud
    storage: str | None = None
    use_queue: bool = False
    user_map: Path | None = None
    package_files: int = 250
    package_bytes: int = 250 * 1024 * 1024
    poll_interval: float = 15.0
    archive_small_files: bool = False

    def __repr__(self) -> str:  # the connection string holds the account key
        return f"MigrationApiOptions(cloud={self.cloud.name}, own_storage={bool(self.storage)})"


@dataclass(frozen=True)
class MigrateRequest:
    """Everything one job needs. `target` is parsed already; `options` are the scan options
    (filters, rename policy); `engine` the round's tuning and conflict policy."""

    source: str
    target: TargetSpec
    endpoints: Endpoints
    options: ScanOptions = field(default_factory=ScanOptions)
    engine: EngineConfig = field(default_factory=EngineConfig)
    state_path: Path = field(default_factory=default_state_path)
    report_dir: Path | None = None
    include_root: bool = False
    dry_run: bool = False
    job_name: str | None = None
    migration_api: MigrationApiOptions | None = None
    """Set: files go as Migration API packages (`--via migration-api`); None: through Graph."""


@dataclass
class MigrateOutcome:
    """What a run did: the round (None for a dry run, which has `plan_counts` instead)."""

    result: RoundResult | None
    summary: RoundSummary | None
    reports: ReportFiles | None
    target: ResolvedTarget
    plan_counts: dict[str, int] = field(default_factory=dict)


def job_key(source: str, target: ResolvedTarget) -> str:
    """A job's identity: the source folder and the resolved target folder (whatever form the
    target was given in, the same folder is the same job)."""
    text = f"{os.path.abspath(source)}\n{target.drive_id}\n{target.folder.lower()}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def check_report_folder(folder: Path, source: str | None = None) -> None:
    """Make sure reports can be written into `folder` (the folders missing are made 0700)
    before anything is uploaded, so that a run never ends in an error after all its work.
    Raises OptionError (`report`) for a folder that cannot be made or written, or that lies
    inside `source`."""
    where = folder.resolve()
    if source is not None:
        top = Path(source).resolve()
        if where == top or top in where.parents:
            raise OptionError(
                "report", f"{folder} is inside SOURCE; the source is never written to"
            )
    try:
        private_folder(where)
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as exc:
        raise OptionError(
            "report", f"cannot write reports into {folder}: {exc.strerror or exc}"
        ) from None


def _absolute(path: str) -> str:
    return os.path.abspath(path)


def _with_root(source: str, target: ResolvedTarget, options: ScanOptions) -> ResolvedTarget:
    """--include-root: the source folder itself goes into the target folder."""
    name = os.path.basename(os.path.abspath(source).rstrip(os.sep)) or "root"
    name = fix_name(name, options.rename, is_dir=True, at_library_root=not target.folder)
    folder = f"{target.folder}/{name}" if target.folder else name
    return replace(target, folder=folder, folder_id=None, web_url=f"{target.web_url}/{name}")


async def run_job(
    request: MigrateRequest,
    credential: TokenProvider,
    *,
    renderer: Renderer | None = None,
    say: Callable[[str], None] = lambda line: None,
    plan: Callable[[PlanEvent], None] | None = None,
    pacer: Pacer | None = None,
    client: GraphClient | None = None,
    store: StateStore | None = None,
    stop: asyncio.Event | None = None,
) -> MigrateOutcome:
    """Run one job (one round); see the module docstring. Raises SourceError, TargetError,
    AuthError, UnavailableError, StateError, BusyError for what prevents the round from
    starting at all.

    `client`: a GraphClient shared with other jobs of the same tenant (left open); without it,
    the job opens its own. `store`: the state store already open in this process (several jobs
    at once share one connection, as two connections in one thread would wait on each other's
    write group); left open. Setting `stop` ends the round gracefully (files in flight finish
    their fragment, the round is recorded as interrupted); cancelling the task ends it at once
    (recorded as interrupted too). `say` hears the lines of a dry run, `plan` its decision
    for every item."""
    check_source(request.source)
    if client is not None:
        return await _run_job(request, client, store, renderer, say, stop, plan, credential)
    scopes = [request.endpoints.graph_scope]

    async def token() -> str:
        return await asyncio.to_thread(credential.token, scopes)

    async with GraphClient(
        token=token,
        base_url=request.endpoints.graph_url,
        verify=request.endpoints.ca_file,
        timeouts=request.endpoints.timeouts,
        connect=request.endpoints.connect,
        pacer=pacer or Pacer(max_concurrency=request.engine.workers),
    ) as own:
        return await _run_job(request, own, store, renderer, say, stop, plan, credential)


async def resolve_job_target(
    client: GraphClient, request: MigrateRequest
) -> tuple[ResolvedTarget, ScanOptions]:
    """Where a job's files go (its folder, with --include-root the source folder's own), and
    its scan options with that target's path, which counts toward SharePoint's path limit.
    Raises TargetError when the target cannot be resolved."""
    target = await resolve_target(client, request.target)
    if request.include_root:
        target = await find_folder(client, _with_root(request.source, target, request.options))
    options = replace(
        request.options,
        target=TargetPrefix(target.server_relative_path, at_library_root=not target.folder),
    )
    return target, options


async def _run_job(
    request: MigrateRequest,
    client: GraphClient,
    shared_store: StateStore | None,
    renderer: Renderer | None,
    say: Callable[[str], None],
    stop: asyncio.Event | None = None,
    plan: Callable[[PlanEvent], None] | None = None,
    credential: TokenProvider | None = None,
) -> MigrateOutcome:
    target, options = await resolve_job_target(client, request)
    if request.dry_run:
        counts = dry_run(request, target, options, say, plan)
        return MigrateOutcome(None, None, None, target, counts)
    if request.report_dir is not None:
        check_report_folder(request.report_dir, request.source)
    opened = (
        contextlib.nullcontext(shared_store)
        if shared_store is not None
        else open_state(request.state_path)
    )
    key = job_key(request.source, target)
    # Two runs of one job (two cron entries, a run started by hand) would fight over the same
    # items and upload sessions; the second is refused before it touches anything.
    lock = RunLock(
        lock_path(request.state_path, f"job-{key}"),
        f"the job {_absolute(request.source)} -> {target.web_url}",
    )
    with lock, opened as store:
        job = store.ensure_job(
            key,
            _absolute(request.source),
            target.web_url,
            {"name": request.job_name or "", "policy": request.engine.policy},
        )
        store.set_job_target(job.id, target.drive_id, target.folder_id, target.folder)
        job = store.job(job.id) or job  # with its target: a package names paths by it
        tally = Tally()
        earlier = store.rounds(job.id)
        if earlier:
            tally.resumed_from = f"round {earlier[-1].number}, {earlier[-1].status}"
        engine = Engine(
            drive=DriveClient(client, target.drive_id),
            store=store,
            job=job,
            source=request.source,
            target=target,
            options=options,
            config=request.engine,
            tally=tally,
            log_path=current_file(),
            **movers(request, credential),
        )
        if renderer is not None:
            renderer.start(tally)
        watcher = asyncio.create_task(_stop_on(stop, engine)) if stop is not None else None
        try:
            result = await engine.run()
        finally:
            if watcher is not None:
                watcher.cancel()
            if renderer is not None:
                renderer.stop()
        rnd = store.round(result.round_id)
        assert rnd is not None
        folder = request.report_dir or (
            request.state_path.parent / "reports" / f"job-{job.id}" / f"round-{rnd.number}"
        )
        store.set_round_reports(rnd.id, str(folder.resolve()))
        reports, summary = write_round_reports(store, job, rnd, folder)
        log.info(
            "job %d round %d: %d migrated (%d bytes), %d skipped, %d unchanged, %d failed, "
            "%d not migrated in %.1f s (%.3f GB/hour); reports in %s",
            job.id,
            summary.round_number,
            summary.migrated_items,
            summary.migrated_bytes,
            summary.skipped_items,
            summary.unchanged_items,
            summary.failed_items,
            summary.items_not_migrated,
            summary.duration_seconds,
            summary.gb_per_hour,
            reports.folder,
        )
        if request.migration_api is not None:
            from sharelift.migration_api.report import write_migration_jobs

            write_migration_jobs(store, job, folder)
        return MigrateOutcome(result, summary, reports, target)


def movers(
    request: MigrateRequest,
    credential: TokenProvider | None,
    *,
    unit_id: int | None = None,
    earlier_rounds: bool = False,
) -> dict[str, MoverFactory]:
    """The round's mover, as `Engine`'s keyword: Graph's by default (none given), the
    Migration API's for `--via migration-api`. On a cluster, `unit_id` is the unit the mover
    works for, and `earlier_rounds` whether it takes up the packages of the job's earlier
    rounds too (`MigrationApiSettings`)."""
    options = request.migration_api
    if options is None:
        return {}
    from sharelift.migration_api.mover import MigrationApiMover, MigrationApiSettings

    if credential is None:
        raise ValueError("the Migration API mover needs the credential")
    provider = credential

    async def token(scopes: Sequence[str]) -> str:
        return await asyncio.to_thread(provider.token, list(scopes))

    settings = MigrationApiSettings(
        cloud=options.cloud,
        token=token,
        key_dir=request.state_path.parent / "keys",
        storage=options.storage,
        use_queue=options.use_queue,
        user_map=options.user_map,
        package_files=options.package_files,
        package_bytes=options.package_bytes,
        poll_interval=options.poll_interval,
        archive_small_files=options.archive_small_files,
        unit_id=unit_id,
        earlier_rounds=earlier_rounds,
    )
    return {"mover": MigrationApiMover.factory(settings)}


async def _stop_on(event: asyncio.Event, engine: Engine) -> None:
    await event.wait()
    engine.request_stop()


def dry_run(
    request: MigrateRequest,
    target: ResolvedTarget,
    options: ScanOptions,
    say: Callable[[str], None],
    tell: Callable[[PlanEvent], None] | None = None,
) -> dict[str, int]:
    """Tell what a round would do, from the source and the state store; change nothing.
    `say` hears a line per item that would change and a closing line; `tell` (if given) a
    PlanEvent for every item."""
    counts: Counter[str] = Counter()
    store = None
    if request.state_path.exists():
        store = open_state(request.state_path, readonly=True)
    top = target.server_relative_path
    try:
        job = store.job_by_key(job_key(request.source, target)) if store else None
        state = functools.partial(store.children, job.id) if store and job else None
        for planned in plan_tree(request.source, options, state=state):
            for plan in planned.plans:
                counts[plan.action.value] += 1
                reason = f"{plan.code}: {plan.message}" if plan.code else ""
                if tell is not None:
                    where = plan.target_relpath
                    tell(
                        PlanEvent(
                            source=plan.item.relpath,
                            target=f"{top}/{where}" if where is not None else None,
                            action=plan.action.value,
                            reason=reason,
                            kind="folder" if plan.item.is_dir else "file",
                            size=0 if plan.item.is_dir else plan.item.size,
                        )
                    )
                if plan.action not in (Action.SKIP_UNCHANGED, Action.FOLDER_KNOWN):
                    where = plan.target_relpath or ""
                    detail = f" ({reason})" if reason else ""
                    say(f"{plan.action.value:18} {plan.item.relpath} -> {where}{detail}")
    finally:
        if store is not None:
            store.close()
    say(
        "dry run, nothing changed: "
        + ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    )
    return dict(counts)


__all__ = [
    "Endpoints",
    "MigrateOutcome",
    "MigrateRequest",
    "MigrationApiOptions",
    "check_report_folder",
    "default_state_path",
    "dry_run",
    "job_key",
    "movers",
    "resolve_job_target",
    "run_job",
]
