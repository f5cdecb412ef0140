"""What each kind of unit does, on the worker that holds its lease.

    job     resolve the job's target, record the job, open its round (once: a unit taken over
            keeps the round its first owner opened), --verify-target, then walk the whole tree
            as a part, carving what the unit has no budget for
    tree    walk one carved sub-tree as a part, carving likewise

    finish  every other unit of the round has ended: end the upload sessions no file needs
            (the Graph mover's `release_stale`), --mirror deletions, sum the units' counters
            into the round and close it

With --via migration-api a job or tree unit packages the files it walks and follows its own
packages' import jobs to their end before it ends (`MigrationApiMover` working for the unit);
the worker taking a unit over resumes them from the state store, where their keys are kept.

A unit taken over from a worker that died lists each target folder before planning
(`Part.listed`): a file that worker sent but did not record is found at the target and
adopted by its hash, not sent again; a file it left mid-way resumes its saved upload session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sharelift.cluster.carving import Publisher, UnitCarver
from sharelift.cluster.heartbeat import Current
from sharelift.cluster.specs import JobSpec, place_from_json, target_from_json, target_to_json
from sharelift.credential import Credential
from sharelift.engine import Engine
from sharelift.engine.graph_upload import GraphMover
from sharelift.engine.mover import RoundContext
from sharelift.engine.outcomes import Outcomes
from sharelift.engine.parts import Part
from sharelift.engine.reconcile import mirror_deletions, verify_target
from sharelift.graph.client import GraphClient
from sharelift.graph.drive import DriveClient
from sharelift.graph.pacer import Pacer
from sharelift.job import MigrateRequest, job_key, movers, resolve_job_target
from sharelift.progress import Tally
from sharelift.source.rules import TargetPrefix
from sharelift.source.walk import ScanOptions, check_source
from sharelift.state import RoundStatus, StateStore, UnitRecord, UnitStatus
from sharelift.target import ResolvedTarget

log = logging.getLogger("sharelift.cluster")

INCOMPLETE = "incomplete: some folders could not be read or made"
"""A unit's message when its walk did not cover its whole sub-tree (no --mirror then)."""


class LeaseLost(Exception):
    """The store says another worker holds the unit now."""


@dataclass
class Ended:
    """How one run of a unit ended: `done`, `failed` (given up), or `released` (handed back,
    due again in `delay` seconds)."""

    status: str
    message: str | None = None
    delay: float = 0.0
    round_id: int | None = None
    job_id: int | None = None
    shared: dict[str, Any] = field(default_factory=dict)
    """What every unit of the round carries (the job, its target), for the finish unit."""

    @property
    def unit_status(self) -> UnitStatus:
        return UnitStatus.DONE if self.status == "done" else UnitStatus.FAILED


class UnitRun:
    """One run of one unit on this worker (see the module docstring)."""

    def __init__(
        self,
        store: StateStore,
        unit: UnitRecord,
        owner: str,
        credential: Credential,
        publish: Publisher,
        current: Current,
    ) -> None:
        self.store = store
        self.unit = unit
        self.owner = owner
        self.credential = credential
        self.publish = publish
        self.current = current
        self.engine: Engine | None = None
        self.stopping = False

    def request_stop(self) -> None:
        """Stop gracefully: files in flight finish their fragment; the unit is handed back."""
        self.stopping = True
        if self.engine is not None:
            self.engine.request_stop()

    async def run(self) -> Ended:
        kind = self.unit.kind
        spec = JobSpec.from_json(self.unit.spec["job"])
        request = spec.request(self.credential)
        if request.migration_api is not None and self.credential.method != "certificate":
            # As on one machine: the Migration API's REST calls take certificate tokens only.
            log.warning(
                "the Migration API needs app-only certificate sign-in; this worker's credential "
                "is %s, which SharePoint refuses for these calls (--auth certificate)",
                self.credential.method,
            )
        if kind == "job":
            return await self._job(spec, request)
        if kind == "tree":
            return await self._tree(spec, request)
        if kind == "finish":
            return await self._finish(request)
        return Ended("failed", f"unknown kind of unit {kind!r}")

    @contextlib.asynccontextmanager
    async def _client(self, request: MigrateRequest) -> AsyncIterator[GraphClient]:
        scopes = [request.endpoints.graph_scope]
        credential = self.credential

        async def token() -> str:
            return await asyncio.to_thread(credential.token, scopes)

        pacer = Pacer(max_concurrency=request.engine.workers)
        self.current.pacer = pacer
        async with GraphClient(
            token=token,
            base_url=request.endpoints.graph_url,
            verify=request.endpoints.ca_file,
            connect=request.endpoints.connect,
            pacer=pacer,
        ) as client:
            yield client

    def _engine(
        self,
        client: GraphClient,
        request: MigrateRequest,
        target: ResolvedTarget,
        options: ScanOptions,
        job_id: int,
    ) -> Engine:
        job = self.store.job(job_id)
        assert job is not None
        tally = Tally()
        self.current.tally = tally
        # --via migration-api: the unit packages its own files and follows its own packages'
        # import jobs to their end before it ends; a job unit also takes up what the job's
        # earlier rounds left open (their units have all ended).
        mover = movers(
            request, self.credential, unit_id=self.unit.id, earlier_rounds=self.unit.kind == "job"
        ).get("mover", GraphMover)
        self.engine = Engine(
            drive=DriveClient(client, target.drive_id),
            store=self.store,
            job=job,
            source=request.source,
            target=target,
            options=options,
            config=request.engine,
            tally=tally,
            mover=mover,
        )
        if self.stopping:
            self.engine.request_stop()
        return self.engine

    def _carver(self, spec: JobSpec, round_id: int, job_id: int, shared: dict[str, Any]) -> Any:
        return UnitCarver(
            self.store,
            self.unit,
            self.owner,
            round_id,
            job_id,
            shared,
            self.publish,
            files=spec.unit_files,
            size=spec.unit_bytes,
        )

    async def _part(self, engine: Engine, part: Part, ended: Callable[..., Ended]) -> Ended:
        result, complete = await engine.run_part(part)
        if result.status == RoundStatus.INTERRUPTED:
            return ended("released", "the worker stopped; the unit goes on elsewhere")
        return ended("done", None if complete else INCOMPLETE)

    async def _job(self, spec: JobSpec, request: MigrateRequest) -> Ended:
        unit, store = self.unit, self.store
        if unit.round_id is None:
            check_source(request.source)  # a job that cannot start fails, with the reason
        async with self._client(request) as client:
            target, options = await resolve_job_target(client, request)
            job = store.ensure_job(
                job_key(request.source, target),
                request.source,
                target.web_url,
                {"name": spec.name, "policy": request.engine.policy, "run": unit.run},
            )
            store.set_job_target(job.id, target.drive_id, target.folder_id, target.folder)
            round_id = unit.round_id
            if round_id is None:
                round_id = store.start_round(job.id).id
                if not store.set_unit_round(unit.id, self.owner, job.id, round_id):
                    raise LeaseLost
            shared = {"job": spec.to_json(), "target": target_to_json(target)}
            engine = self._engine(client, request, target, options, job.id)
            if request.engine.verify_target and unit.round_id is None:
                outcomes = Outcomes(store, engine.tally, job.id, round_id)
                await verify_target(engine.drive, store, outcomes, job.id, round_id)
            carver = self._carver(spec, round_id, job.id, shared)
            part = Part(round_id, listed=unit.attempts > 1, carver=carver)

            def ended(status: str, message: str | None) -> Ended:
                return Ended(status, message, round_id=round_id, job_id=job.id, shared=shared)

            return await self._part(engine, part, ended)

    async def _tree(self, spec: JobSpec, request: MigrateRequest) -> Ended:
        unit = self.unit
        assert unit.round_id is not None and unit.job_id is not None
        round_id, job_id = unit.round_id, unit.job_id
        target = target_from_json(unit.spec["target"])
        options = replace(
            request.options,
            target=TargetPrefix(target.server_relative_path, at_library_root=not target.folder),
        )
        shared = {"job": unit.spec["job"], "target": unit.spec["target"]}
        async with self._client(request) as client:
            engine = self._engine(client, request, target, options, job_id)
            part = Part(
                round_id,
                tuple(os.fsdecode(unit.path).split("/")),
                place_from_json(unit.spec["folder"]),
                unit.spec["root_id"],
                listed=unit.attempts > 1,
                carver=self._carver(spec, round_id, job_id, shared),
            )

            def ended(status: str, message: str | None) -> Ended:
                return Ended(status, message, round_id=round_id, job_id=job_id, shared=shared)

            return await self._part(engine, part, ended)

    async def _finish(self, request: MigrateRequest) -> Ended:
        unit, store = self.unit, self.store
        assert unit.round_id is not None and unit.job_id is not None
        units = [u for u in store.units(round_id=unit.round_id) if u.kind != "finish"]
        if not all(u.finished for u in units):  # cannot happen: made once all had ended
            return Ended("released", "units of the round are still running", delay=30)
        failed = any(u.status is UnitStatus.FAILED for u in units)
        complete = not any(u.message == INCOMPLETE for u in units)
        store.update_round(
            unit.round_id,
            **{
                name: sum(getattr(u, name) for u in units)
                for name in ("files_total", "bytes_total", "files_done", "bytes_done",
                             "files_skipped", "files_failed")
            },
        )  # fmt: skip
        job = store.job(unit.job_id)
        assert job is not None
        target = target_from_json(unit.spec["target"])
        async with self._client(request) as client:
            drive = DriveClient(client, target.drive_id)
            tally = Tally()
            self.current.tally = tally
            outcomes = Outcomes(store, tally, job.id, unit.round_id)
            context = RoundContext(
                drive=drive,
                store=store,
                job=job,
                round_id=unit.round_id,
                root_id=job.folder_id or "",
                config=request.engine,
                outcomes=outcomes,
                stopping=asyncio.Event(),
            )
            if not failed:
                await GraphMover(context).release_stale()
                if request.engine.mirror and complete:
                    await mirror_deletions(drive, store, outcomes, job.id, unit.round_id)
        store.finish_round(unit.round_id, RoundStatus.FAILED if failed else RoundStatus.COMPLETED)
        return Ended("done", round_id=unit.round_id, job_id=job.id)
