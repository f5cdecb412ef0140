"""One migration job, end to end: resolve the target, open the state, run a round, report.

This is the library entry point behind `sharelift migrate` (the CLI only parses flags into a
`MigrateRequest`). It wires the parts together in one place:

    credential ─► GraphClient (HTTP/2, tenant pacer) ─► resolve_target ─► StateStore job
        ─► Engine round (progress tally, Ctrl-C / SIGTERM: graceful stop, a second one: now)
        ─► reports (ItemReport, FailureSummary, SummaryReport, summary.json)

A dry run resolves the target and plans from the source and the state store, then prints what
would happen; it writes nothing anywhere (the state store is opened read-only, if it exists).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from sharelift.auth import Credential
from sharelift.engine import Engine, EngineConfig, RoundResult
from sharelift.errors import UsageError
from sharelift.graph.client import GraphClient
from sharelift.graph.drive import DriveClient
from sharelift.graph.pacer import Pacer
from sharelift.lock import RunLock, lock_path
from sharelift.plan import Action
from sharelift.progress import Renderer, Tally
from sharelift.report import ReportFiles, RoundSummary, write_round_reports
from sharelift.source.pipeline import plan_tree
from sharelift.source.rules import TargetPrefix, fix_name
from sharelift.source.walk import ScanOptions, check_source
from sharelift.state import StateStore, open_state
from sharelift.target import ResolvedTarget, TargetSpec, resolve_target


def default_state_path() -> Path:
    """Where the state store lives unless --state says otherwise."""
    return Path(platformdirs.user_state_dir("sharelift")) / "state.db"


@dataclass(frozen=True)
class Endpoints:
    """Where Graph is and how to reach it (from the cloud, or the emulator)."""

    graph_url: str
    graph_scope: str
    ca_file: str | None = None


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


@dataclass
class MigrateOutcome:
    """What a run did; `exit_code` follows the CLI's table."""

    result: RoundResult | None
    summary: RoundSummary | None
    reports: ReportFiles | None
    target: ResolvedTarget
    plan_counts: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if self.result is None:
            return 0
        if self.result.status == "interrupted":
            return 130
        if self.result.status != "completed" or self.result.failed:
            return 1
        return 0


def job_key(source: str, target: ResolvedTarget) -> str:
    """A job's identity: the source folder and the resolved target folder (whatever form the
    target was given in, the same folder is the same job)."""
    text = f"{os.path.abspath(source)}\n{target.drive_id}\n{target.folder.lower()}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def _absolute(path: str) -> str:
    return os.path.abspath(path)


def _with_root(source: str, target: ResolvedTarget, options: ScanOptions) -> ResolvedTarget:
    """--include-root: the source folder itself goes into the target folder."""
    name = os.path.basename(os.path.abspath(source).rstrip(os.sep)) or "root"
    name = fix_name(name, options.rename, is_dir=True, at_library_root=not target.folder)
    folder = f"{target.folder}/{name}" if target.folder else name
    return replace(target, folder=folder, folder_id=None, web_url=f"{target.web_url}/{name}")


class _Signals:
    """First Ctrl-C or SIGTERM: stop gracefully. Second: stop now."""

    def __init__(self, engine: Engine, main: asyncio.Task[Any], say: Callable[[str], None]):
        self._engine = engine
        self._main = main
        self._say = say
        self._loop = asyncio.get_running_loop()
        self._installed: list[signal.Signals] = []
        self.stopped_now = False
        """True once a second signal cancelled the run."""

    def _fire(self, signum: signal.Signals) -> None:
        if not self._engine.stopping.is_set():
            self._say(
                f"{signum.name}: finishing the files in flight, then stopping "
                "(again to stop at once); the next run resumes"
            )
            self._engine.request_stop()
        else:
            self._say(f"{signum.name}: stopping now")
            self.stopped_now = True
            self._main.cancel()

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(signum, self._fire, signum)
                self._installed.append(signum)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum in self._installed:
            self._loop.remove_signal_handler(signum)


async def run_job(
    request: MigrateRequest,
    credential: Credential,
    *,
    renderer: Renderer | None = None,
    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    pacer: Pacer | None = None,
    client: GraphClient | None = None,
    store: StateStore | None = None,
    signals: bool = True,
    stop: asyncio.Event | None = None,
) -> MigrateOutcome:
    """Run one job (one round); see the module docstring. Raises SourceError, TargetError,
    AuthError, StateError for what prevents the round from starting at all.

    `client`: a GraphClient shared with other jobs of the same tenant (left open); without it,
    the job opens its own. `store`: the state store already open in this process (several jobs
    at once share one connection, as two connections in one thread would wait on each other's
    write group); left open. `signals=False` leaves Ctrl-C / SIGTERM to the caller, who may
    set `stop` to end the round gracefully (files in flight finish, the round is interrupted)."""
    check_source(request.source)
    if client is not None:
        return await _run_job(request, client, store, renderer, say, signals, stop)
    scopes = [request.endpoints.graph_scope]

    async def token() -> str:
        return await asyncio.to_thread(credential.token, scopes)

    async with GraphClient(
        token=token,
        base_url=request.endpoints.graph_url,
        verify=request.endpoints.ca_file,
        pacer=pacer or Pacer(max_concurrency=request.engine.workers),
    ) as own:
        return await _run_job(request, own, store, renderer, say, signals, stop)


async def _run_job(
    request: MigrateRequest,
    client: GraphClient,
    shared_store: StateStore | None,
    renderer: Renderer | None,
    say: Callable[[str], None],
    use_signals: bool,
    stop: asyncio.Event | None = None,
) -> MigrateOutcome:
    target = await resolve_target(client, request.target)
    if request.include_root:
        target = _with_root(request.source, target, request.options)
        with contextlib.suppress(Exception):
            item = await DriveClient(client, target.drive_id).get_item_by_path(target.folder)
            if item.is_folder:
                target = replace(target, folder_id=item.id)
    options = replace(
        request.options,
        target=TargetPrefix(target.server_relative_path, at_library_root=not target.folder),
    )
    if request.dry_run:
        counts = dry_run(request, target, options, say)
        return MigrateOutcome(None, None, None, target, counts)
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
        tally = Tally()
        engine = Engine(
            drive=DriveClient(client, target.drive_id),
            store=store,
            job=job,
            source=request.source,
            target=target,
            options=options,
            config=request.engine,
            tally=tally,
        )
        main = asyncio.current_task()
        assert main is not None
        if renderer is not None:
            renderer.start(tally)
        signals = _Signals(engine, main, say)
        watcher = asyncio.create_task(_stop_on(stop, engine)) if stop is not None else None
        try:
            with signals if use_signals else contextlib.nullcontext(signals):
                result = await engine.run()
        except asyncio.CancelledError:
            if not signals.stopped_now:
                raise
            # The round is closed as interrupted already; end as an interrupted run does
            # (the CLI's exit code 130), not with the cancellation's traceback.
            raise KeyboardInterrupt from None
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
        reports, summary = write_round_reports(store, job, rnd, folder)
        return MigrateOutcome(result, summary, reports, target)


async def _stop_on(event: asyncio.Event, engine: Engine) -> None:
    await event.wait()
    engine.request_stop()


def dry_run(
    request: MigrateRequest,
    target: ResolvedTarget,
    options: ScanOptions,
    say: Callable[[str], None],
) -> dict[str, int]:
    """Print what a round would do, from the source and the state store; change nothing."""
    counts: Counter[str] = Counter()
    store = None
    if request.state_path.exists():
        store = open_state(request.state_path, readonly=True)
    try:
        job = store.job_by_key(job_key(request.source, target)) if store else None
        state = functools.partial(store.children, job.id) if store and job else None
        for planned in plan_tree(request.source, options, state=state):
            for plan in planned.plans:
                counts[plan.action.value] += 1
                if plan.action not in (Action.SKIP_UNCHANGED, Action.FOLDER_KNOWN):
                    where = plan.target_relpath or ""
                    detail = f" ({plan.code}: {plan.message})" if plan.code else ""
                    say(f"{plan.action.value:18} {plan.item.relpath} -> {where}{detail}")
    finally:
        if store is not None:
            store.close()
    say(
        "dry run, nothing changed: "
        + ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    )
    return dict(counts)


def parse_chunk_size(value: str) -> int:
    """`10M`, `320k`, `5242880` -> bytes (binary units); the engine checks the 320 KiB rule."""
    text = value.strip().lower().removesuffix("b").removesuffix("i")
    units = {"k": 1024, "m": 1024**2}
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise UsageError(f"--chunk-size: expected a size like 10M or 320k, got {value!r}") from None


__all__ = [
    "Endpoints",
    "MigrateOutcome",
    "MigrateRequest",
    "default_state_path",
    "dry_run",
    "job_key",
    "parse_chunk_size",
    "run_job",
]
