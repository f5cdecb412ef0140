"""Pre-flight of a job file (`sharelift migrate --jobs FILE --dry-run`): every row checked as
a run would start it, and nothing written anywhere.

For each row: the row itself (the job file's checks: columns, source folder, settings), the
target resolved through Graph (the same messages as a run: the host, site, library or user
that is missing), the source scanned with the row's options and the target's path (names,
path lengths, unreadable entries: the scan's findings, counted), and the settings the row asks
for that sharelift does not apply (warnings). A row is *ready* when its target resolves and its
source can be read; findings and warnings do not stop a row (a run renames or skips those
items, as the scan says), they are counted so that they can be fixed first.

Targets are resolved over one Graph client, a few rows at a time; sources are scanned on
threads. No state store, report or target folder is touched.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sharelift.auth import TokenProvider
from sharelift.errors import ShareliftError
from sharelift.graph.client import GraphClient
from sharelift.graph.pacer import Pacer
from sharelift.job import MigrateRequest
from sharelift.jobs import Job, JobFile
from sharelift.scanner import run_scan
from sharelift.source.rules import TargetPrefix
from sharelift.target import resolve_target


@dataclass
class RowCheck:
    """What the pre-flight found for one row."""

    job: str
    """`jobs.csv#3`: file and row."""
    source: str
    target: str
    """The target as the row gives it; `destination` is its resolved URL."""
    ready: bool = False
    message: str = ""
    """Why the row is not ready ("" when it is)."""
    destination: str = ""
    files: int = 0
    bytes: int = 0
    renamed: int = 0
    skipped: int = 0
    blocked: int = 0
    findings: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        return "ready" if self.ready else "not ready"

    def to_dict(self) -> dict[str, Any]:
        return {"event": "row", "status": self.status, **asdict(self)}


async def preflight_jobs(
    job_file: JobFile,
    template: MigrateRequest,
    credential: TokenProvider,
    *,
    max_parallel: int = 4,
) -> list[RowCheck]:
    """Check every row of `job_file` (valid and invalid), in row order; see the module
    docstring. `template` gives the endpoints and the base scan options, as for a run."""
    scopes = [template.endpoints.graph_scope]

    async def token() -> str:
        return await asyncio.to_thread(credential.token, scopes)

    gate = asyncio.Semaphore(max_parallel)
    async with GraphClient(
        token=token,
        base_url=template.endpoints.graph_url,
        verify=template.endpoints.ca_file,
        timeouts=template.endpoints.timeouts,
        pacer=Pacer(max_concurrency=max_parallel),
        connect=template.endpoints.connect,
    ) as client:
        await token()  # a credential that cannot work fails the pre-flight once, not per row

        async def one(job: Job) -> RowCheck:
            async with gate:
                return await _check(client, job, template)

        checks = list(await asyncio.gather(*(one(job) for job in job_file.jobs)))
    checks += [
        RowCheck(f"{e.file}#{e.row}", "", "", message=str(e).split(": ", 1)[1])
        for e in job_file.errors
    ]
    checks.sort(key=lambda c: int(c.job.rsplit("#", 1)[1]))
    return checks


async def _check(client: GraphClient, job: Job, template: MigrateRequest) -> RowCheck:
    check = RowCheck(job.name, job.source_text, str(job.target), warnings=job.warnings)
    try:
        target = await resolve_target(client, job.target)
    except ShareliftError as exc:
        check.message = str(exc)
        return check
    check.destination = target.web_url
    options = replace(
        job.scan_options(template.options),
        target=TargetPrefix(target.server_relative_path, at_library_root=not target.folder),
    )
    try:
        summary = await asyncio.to_thread(run_scan, job.source, options)
    except ShareliftError as exc:
        check.message = str(exc)
        return check
    counted = summary.to_dict()
    check.ready = True
    check.files, check.bytes = summary.files, summary.bytes
    check.renamed, check.skipped = counted["renamed"], counted["skipped"]
    check.blocked, check.findings = counted["blocked"], dict(counted["findings"])
    return check


__all__ = ["RowCheck", "preflight_jobs"]
