"""The public library functions: `scan`, `migrate` and `migrate_async`, and their results.

    result = sharelift.scan("/mnt/dept", exclude=["*.tmp"])
    result = sharelift.migrate("/mnt/dept", "onedrive:megan@contoso.com/Dept",
                               credential=credential, workers=8, progress=[print])

The keyword options are those of `sharelift config docs` marked for the library, with the same
names, meanings, defaults and checks as the command line's (sharelift.config). A value may be
given as a Python value (`chunk_size=10 * 1024**2`, `modified_after=datetime(...)`) or as the
text the command line takes (`chunk_size="10M"`, `modified_after="2024-01-31"`).

Nothing here prints, installs a signal handler or exits. Errors are in sharelift.errors; what
goes wrong with one file during a run is counted in the result, not raised.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharelift.config import keyword_options, unflagged
from sharelift.errors import OptionError, ShareliftError

if TYPE_CHECKING:
    from sharelift.credential import Credential
    from sharelift.job import MigrateOutcome, MigrateRequest
    from sharelift.progress import ProgressEvent, Subscriber, Tally
    from sharelift.scanner import ScanSummary
    from sharelift.source import ScanOptions, TargetPrefix
    from sharelift.target import TargetSpec

log = logging.getLogger("sharelift")

PathLike = str | os.PathLike[str]
PROGRESS_INTERVAL = 0.5
"""Seconds between two `progress` events."""


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanResult:
    """What `scan` found. Counts are of files and folders together unless named otherwise;
    `to_dict()` is the summary.json layout (`sharelift scan --json`)."""

    source: str
    """The scanned folder, absolute."""
    target: str
    """The target as given ("" without one)."""
    target_prefix: str
    """The target's server-relative path, counted in the 400-character limit."""
    rename: str
    """The rename policy applied."""
    scanned_items: int
    folders: int
    files: int
    bytes: int
    """Bytes of all files seen (filtered-out files excepted)."""
    items_with_issues: int
    """Items with at least one finding (renamed, skipped or blocked)."""
    folders_with_issues: int
    filtered_out: int
    """Items left out by a filter (include, exclude, skip_hidden, ...)."""
    filtered_bytes: int
    to_be_migrated: int
    bytes_to_be_migrated: int
    renamed: int
    skipped: int
    blocked: int
    findings: Mapping[str, int]
    """Findings by code (INVALID_CHARACTER, PATH_TOO_LONG, ...; see docs/scan.md)."""
    filters: Mapping[str, int]
    """Items left out, by filter."""
    largest_files: tuple[tuple[str, int], ...]
    """The ten largest files: (path relative to the source, size)."""
    longest_paths: tuple[tuple[str, int], ...]
    """The ten longest target paths: (path, length)."""
    started: dt.datetime
    finished: dt.datetime | None
    duration_seconds: float
    report_dir: Path | None = None
    """Where ScanSummary.csv, ScanReport.csv and summary.json were written, if anywhere."""

    @property
    def has_findings(self) -> bool:
        return self.items_with_issues > 0

    @classmethod
    def from_summary(cls, summary: ScanSummary, report_dir: Path | None) -> ScanResult:
        data = summary.to_dict()
        return cls(
            **{k: data[k] for k in _SCAN_NUMBERS},
            source=data["source"],
            target=data["target"],
            target_prefix=data["target_prefix"],
            rename=data["rename"],
            findings=dict(data["findings"]),
            filters=dict(data["filters"]),
            largest_files=tuple((f["path"], f["size"]) for f in data["largest_files"]),
            longest_paths=tuple((p["path"], p["length"]) for p in data["longest_paths"]),
            started=summary.started,
            finished=summary.finished,
            duration_seconds=data["duration_seconds"],
            report_dir=report_dir,
        )

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data, in summary.json's layout."""
        return {
            "source": self.source,
            "target": self.target,
            "target_prefix": self.target_prefix,
            "rename": self.rename,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "duration_seconds": self.duration_seconds,
            **{k: getattr(self, k) for k in _SCAN_NUMBERS},
            "findings": dict(self.findings),
            "filters": dict(self.filters),
            "largest_files": [{"path": p, "size": s} for p, s in self.largest_files],
            "longest_paths": [{"path": p, "length": n} for p, n in self.longest_paths],
        }


_SCAN_NUMBERS = (
    "scanned_items", "folders", "files", "bytes", "items_with_issues", "folders_with_issues",
    "filtered_out", "filtered_bytes", "to_be_migrated", "bytes_to_be_migrated", "renamed",
    "skipped", "blocked",
)  # fmt: skip


@dataclass(frozen=True)
class MigrationResult:
    """What `migrate` did: one round of one job (or, with `dry_run`, its plan)."""

    status: str
    """completed, interrupted (stopped; the next run resumes), failed (the round could not go
    on), or planned (a dry run)."""
    target: str
    """The target folder's web URL."""
    uploaded: int = 0
    """Files uploaded and verified (by hash, or as below)."""
    enriched: int = 0
    """Of those uploaded: Office files a SharePoint library rewrote as it stored them (its
    metadata), every other part proved identical (`prove_office_files`)."""
    unverified: int = 0
    """Of those uploaded: files a library rewrote whose content was not compared (the proof
    off, or a legacy binary Office file); the upload took every byte."""
    adopted: int = 0
    """Files found at the target with the same content, recorded without an upload."""
    unchanged: int = 0
    """Files unchanged since the last run (no request made)."""
    skipped: int = 0
    failed: int = 0
    deleted: int = 0
    """Items moved to the target's recycle bin (`mirror`)."""
    bytes_uploaded: int = 0
    stopped_by: str = ""
    """Why the round stopped before its end when the target made it stop (its drive is full:
    the status is then "interrupted" and the next run resumes), else ""."""
    round: int | None = None
    """The round's number in the job's history (`sharelift status`)."""
    reports: Path | None = None
    """The folder of ItemReport.csv, FailureSummary.csv, SummaryReport.csv, summary.json."""
    summary: Mapping[str, Any] = field(default_factory=dict)
    """The round's figures as SummaryReport.csv has them (bytes, duration, GB/hour, ...)."""
    planned: Mapping[str, int] = field(default_factory=dict)
    """A dry run: the number of items per planned action (upload, create_folder, ...)."""

    @property
    def ok(self) -> bool:
        """The round completed (or was planned) and nothing failed."""
        return self.status in ("completed", "planned") and self.failed == 0

    @classmethod
    def from_outcome(cls, outcome: MigrateOutcome) -> MigrationResult:
        target = outcome.target.web_url
        result = outcome.result
        if result is None:
            return cls("planned", target, planned=dict(outcome.plan_counts))
        return cls(
            status=result.status,
            target=target,
            uploaded=result.uploaded,
            enriched=result.enriched,
            unverified=result.unverified,
            adopted=result.adopted,
            unchanged=result.unchanged,
            skipped=result.skipped,
            failed=result.failed,
            deleted=result.deleted,
            bytes_uploaded=result.bytes_uploaded,
            stopped_by=result.stopped_by,
            round=outcome.summary.round_number if outcome.summary else None,
            reports=outcome.reports.folder if outcome.reports else None,
            summary=asdict(outcome.summary) if outcome.summary else {},
        )


# --- scan ------------------------------------------------------------------------------------


def scan(
    source: PathLike,
    target: str | None = None,
    *,
    credential: Credential | None = None,
    **options: Any,
) -> ScanResult:
    """Walk `source` read-only and check every item against OneDrive / SharePoint's rules.
    `target` (a library or folder URL, `onedrive:UPN[/folder]` or a server-relative path) makes
    its path count toward the 400-character limit; no network is used for it, unless a
    `credential` is given: then `target` may be any form `migrate` takes (`drive:ID/folder`,
    a site's URL) and is resolved through Graph, which knows the library's real URL. With
    `report=DIR`, the reports are written there (never inside `source`).

    Options: report, inventory (with report: every item and each folder's totals too),
    rename, follow_symlinks, skip_hidden, include, exclude, skip_extensions, modified_after,
    created_after. Raises SourceError, OptionError; with a credential also TargetError,
    AuthError, UnavailableError as `migrate` does; findings are not errors.
    """
    from sharelift.scanner import run_scan

    values = keyword_options("scan", options)
    report = values.pop("report")
    inventory = values.pop("inventory")
    prefix = None
    if target and credential is not None:
        prefix = _resolved_prefix(target, credential)
    elif target:
        prefix = _prefix(target)
    scan_options = _scan_options(values, prefix)
    try:
        summary = run_scan(
            source, scan_options, report_dir=report, target_text=target or "", inventory=inventory
        )
    except ShareliftError as exc:
        raise unflagged(exc) from None
    return ScanResult.from_summary(summary, Path(report) if report else None)


def _prefix(target: str) -> TargetPrefix:
    from sharelift.source import TargetPrefix

    try:
        return TargetPrefix.parse(target)
    except ShareliftError as exc:
        raise OptionError("target", str(exc).removeprefix("TARGET: ")) from None


def _resolved_prefix(target: str, credential: Credential) -> TargetPrefix:
    """The server-relative path of `target`, resolved through Graph."""
    from sharelift.graph.client import GraphClient
    from sharelift.graph.pacer import Pacer
    from sharelift.source import TargetPrefix
    from sharelift.target import parse_target, resolve_target

    spec = parse_target(target)
    cloud = credential.cloud

    async def token() -> str:
        return await asyncio.to_thread(credential.token, [cloud.graph_scope])

    async def resolve() -> TargetPrefix:
        async with GraphClient(
            token=token,
            base_url=cloud.graph_url,
            verify=cloud.ca_file,
            timeouts=credential.timeouts,
            pacer=Pacer(),
            connect=cloud.connect,
        ) as client:
            resolved = await resolve_target(client, spec)
        return TargetPrefix(resolved.server_relative_path, at_library_root=not resolved.folder)

    return asyncio.run(resolve())


def _scan_options(values: Mapping[str, Any], prefix: TargetPrefix | None = None) -> ScanOptions:
    from sharelift.source import ScanOptions

    return ScanOptions(
        follow_symlinks=values["follow_symlinks"],
        skip_hidden=values["skip_hidden"],
        include=values["include"],
        exclude=values["exclude"],
        skip_extensions=values["skip_extensions"],
        modified_after=values["modified_after"],
        created_after=values["created_after"],
        rename=values["rename"],
        target=prefix,
    )


# --- migrate ---------------------------------------------------------------------------------


def migrate(
    source: PathLike,
    target: str | None = None,
    *,
    credential: Credential,
    progress: Sequence[Subscriber] = (),
    **options: Any,
) -> MigrationResult:
    """Migrate the contents of `source` into `target`; see `migrate_async`. Runs its own event
    loop: from async code, await `migrate_async` instead. Ctrl-C stops the round at once (it is
    recorded as interrupted and the next run resumes) and raises KeyboardInterrupt."""
    return asyncio.run(
        migrate_async(source, target, credential=credential, progress=progress, **options)
    )


async def migrate_async(
    source: PathLike,
    target: str | None = None,
    *,
    credential: Credential,
    progress: Sequence[Subscriber] = (),
    stop: asyncio.Event | None = None,
    **options: Any,
) -> MigrationResult:
    """Migrate the contents of `source` into `target`: one round, resumable, verified by hash,
    incremental (a second run moves only what changed).

    `target` is any form the command line takes: a OneDrive or SharePoint folder URL,
    `onedrive:UPN/folder`, `drive:ID/folder`; or None with the options `site`, `library` and
    `subfolder` (SPMT's triple). `progress`: subscribers that receive every ProgressEvent.
    Setting `stop` ends the round gracefully (files in flight finish their fragment) with the
    status `interrupted`; cancelling the task ends it at once (recorded as interrupted too).

    Options: state, report, include_root, on_conflict, dry_run, mirror, verify_target, workers,
    chunk_size, site, library, subfolder, the filters and rename policy of `scan`, and `via`
    ("graph" or "migration-api") with the Migration API's options (migration_storage,
    migration_queue, user_map, package_files, package_size, migration_poll,
    archive_small_files).
    Raises SourceError, OptionError, TargetError, AuthError, UnavailableError, StateError,
    BusyError for what keeps the round from starting.
    """
    from sharelift.job import run_job

    values = keyword_options("migrate", options)
    spec = _target_spec(target, values["site"], values["library"], values["subfolder"])
    if values["via"] == "migration-api" and values["on_conflict"] == "rename":
        raise OptionError(
            "on_conflict", "rename cannot go with via migration-api (a package replaces a file)"
        )
    request = migrate_request(os.fspath(source), spec, credential, values)
    feed = _ProgressFeed(progress)
    if request.migration_api is not None and credential.method != "certificate":
        # The Migration API's REST calls take app-only tokens from certificates only.
        feed.message(
            f"warning: the Migration API needs app-only certificate sign-in; this credential is "
            f"{credential.method}, which SharePoint refuses for these calls (--auth certificate)"
        )
    outcome = await run_job(
        request, credential, renderer=feed, say=feed.message, plan=feed.send, stop=stop
    )
    return MigrationResult.from_outcome(outcome)


def migrate_request(
    source: str, spec: TargetSpec, credential: Credential, values: Mapping[str, Any]
) -> MigrateRequest:
    """The engine room's request for checked `migrate` options (also the template of every
    row of a job file, sharelift.cli.jobs)."""
    from sharelift.engine import EngineConfig
    from sharelift.job import Endpoints, MigrateRequest, MigrationApiOptions, default_state_path
    from sharelift.urls import hide_password, is_url

    cloud = credential.cloud
    if values["state"] and is_url(str(values["state"])):
        raise OptionError(
            "state",
            f"{hide_password(str(values['state']))} serves a cluster: hand the jobs to its "
            "workers (broker), or give a file for a run on this machine",
        )
    return MigrateRequest(
        source=source,
        target=spec,
        endpoints=Endpoints(
            cloud.graph_url,
            cloud.graph_scope,
            cloud.ca_file,
            timeouts=credential.timeouts,
            connect=cloud.connect,
        ),
        options=_scan_options(values),
        engine=EngineConfig(
            chunk_size=values["chunk_size"],
            workers=values["workers"],
            policy=values["on_conflict"],
            mirror=values["mirror"],
            verify_target=values["verify_target"],
            prove_office_files=values["prove_office_files"],
            remove_old_versions=values["remove_old_versions"],
        ),
        state_path=Path(values["state"]) if values["state"] else default_state_path(),
        report_dir=Path(values["report"]) if values["report"] else None,
        include_root=values["include_root"],
        dry_run=values["dry_run"],
        migration_api=MigrationApiOptions(
            cloud=cloud,
            storage=values["migration_storage"] or None,
            use_queue=values["migration_queue"],
            user_map=Path(values["user_map"]) if values["user_map"] else None,
            package_files=values["package_files"],
            package_bytes=values["package_size"],
            poll_interval=values["migration_poll"],
            archive_small_files=values["archive_small_files"],
        )
        if values["via"] == "migration-api"
        else None,
    )


def _target_spec(target: str | None, site: str, library: str, subfolder: str) -> TargetSpec:
    from sharelift.target import parse_target, site_triple

    if site or library:
        if target:
            raise OptionError("site", "give a target, or a site and library, not both")
        if not (site and library):
            raise OptionError("library" if site else "site", "site and library go together")
        return site_triple(site, library, subfolder)
    if not target:
        raise OptionError("target", "missing: give a target (or a site and library)")
    return parse_target(target)


class _ProgressFeed:
    """The one place where progress subscribers meet the engine. It serves `run_job` as its
    renderer: at the start it subscribes every subscriber to the round's `Tally` (item, byte
    and phase events), then sends a `SnapshotEvent` every PROGRESS_INTERVAL seconds and one at
    the end; a dry run's lines and decisions, which have no tally, come as `MessageEvent`s and
    `PlanEvent`s."""

    def __init__(self, subscribers: Sequence[Subscriber]) -> None:
        self._subscribers = list(subscribers)
        self._tally: Tally | None = None
        self._ticker: asyncio.Task[None] | None = None

    def message(self, text: str) -> None:
        from sharelift.progress import MessageEvent

        self.send(MessageEvent(text))

    def send(self, event: ProgressEvent) -> None:
        """`event` to every subscriber (a dry run's events, which have no tally)."""
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:  # as the tally does: a subscriber's fault must not end the run
                log.exception("a progress subscriber failed; it is unsubscribed")
                self._subscribers.remove(subscriber)

    def _snapshot(self) -> None:
        from sharelift.progress import SnapshotEvent

        if self._tally is not None:
            self._tally.publish(SnapshotEvent(self._tally.snapshot()))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            self._snapshot()

    def start(self, tally: Tally) -> None:
        if not self._subscribers:
            return
        self._tally = tally
        for subscriber in self._subscribers:
            tally.subscribe(subscriber)
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        self._snapshot()


__all__ = [
    "MigrationResult",
    "ScanResult",
    "migrate",
    "migrate_async",
    "scan",
]
