"""`sharelift migrate --broker`: the jobs handed to the workers, then followed from the state
store until every round they opened is closed, and the reports written here.

    submit(...)   a job unit per job (its spec carries the job as given: no secret), recorded,
                  then handed to the broker; refused when the same job is still running
    progress(...) the run's units summed, as one progress Snapshot (every machine's work)
    sample(...)   the run's rounds' counters summed over their units, kept as each round's
                  samples (the reports' throughput chart shows the whole cluster's)
    results(...)  once the run is over: each job's round reports (as one machine writes
                  them) and a JobResult per job, for the summary of a job file

The coordinator needs no credential: the workers sign in themselves. Stopping it does not
stop the run: the workers go on, and `sharelift status` follows it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sharelift.bulk import JobResult
from sharelift.cluster.carving import Publisher
from sharelift.cluster.specs import JobSpec
from sharelift.engine import RoundResult
from sharelift.errors import BusyError
from sharelift.job import MigrateOutcome
from sharelift.progress import Snapshot, Tally
from sharelift.report import write_round_reports
from sharelift.state import (
    NewUnit,
    RoundSample,
    RoundStatus,
    StateStore,
    UnitRecord,
    UnitStatus,
)
from sharelift.state.records import utcnow
from sharelift.target import ResolvedTarget


@dataclass(frozen=True)
class ClusterJob:
    """One job to hand to the workers of `queue`."""

    spec: JobSpec
    queue: str


def new_run() -> str:
    """A new run's id: its UTC start and a random part."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def _same(a: JobSpec, b: JobSpec) -> bool:
    return a.source == b.source and a.target == b.target


def submit(store: StateStore, publish: Publisher, jobs: Sequence[ClusterJob], run: str) -> None:
    """Record a job unit per job and hand each to the broker. Raises BusyError (nothing
    recorded) when one of the jobs is still running from an earlier run. A unit the broker
    cannot take now stays due; the workers' heartbeats hand it over."""
    busy_runs = {u.run for u in store.units() if not u.finished}
    for unit in store.units():
        if unit.kind != "job" or unit.run not in busy_runs:
            continue
        running = JobSpec.from_json(unit.spec["job"])
        for job in jobs:
            if _same(job.spec, running):
                raise BusyError(
                    f"the job {job.spec.source} -> {job.spec.target} is running already "
                    f"(run {unit.run}; see sharelift status)"
                )
    for index, job in enumerate(jobs, start=1):
        made = store.add_unit(
            NewUnit(
                key=f"{run}:job:{index}",
                run=run,
                kind="job",
                queue=job.queue,
                spec={"job": job.spec.to_json()},
            )
        )
        assert made is not None
        try:
            publish(made[0], job.queue)
        except Exception:  # noqa: S112 (the broker is away: a worker's heartbeat hands it over)
            continue
        store.mark_published([made[0]])


def job_units(store: StateStore, run: str) -> list[UnitRecord]:
    return [u for u in store.units(run=run) if u.kind == "job"]


def over(store: StateStore, run: str) -> bool:
    """True when every job of the run has ended: its job unit failed before opening a round,
    or its round is closed."""
    for unit in job_units(store, run):
        if not unit.finished and unit.round_id is None:
            return False
        if unit.round_id is not None:
            rnd = store.round(unit.round_id)
            if rnd is None or rnd.status == RoundStatus.RUNNING:
                return False
    return True


class Progress(Tally):
    """A run's progress on every machine: its units summed into one Snapshot (`refresh`), with
    a rate over the last samples, for the progress renderers, which sample `snapshot()`."""

    def __init__(self) -> None:
        super().__init__()
        self._samples: list[tuple[float, int]] = []
        self._latest: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        return self._latest if self._latest is not None else super().snapshot()

    def refresh(self, store: StateStore, run: str) -> None:
        self._latest = self.read(store, run)

    def read(self, store: StateStore, run: str) -> Snapshot:
        """The run's progress now, from the state store."""
        units = store.units(run=run)
        counted = [u for u in units if u.kind != "finish"]  # a finish unit moves no file
        now = time.monotonic()
        done = sum(u.bytes_done for u in counted)
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > 10:
            self._samples.pop(0)
        t0, b0 = self._samples[0]
        by_status = {s: sum(1 for u in units if u.status is s) for s in UnitStatus}
        live = store.workers()
        clock = store.store_time()
        workers = sum(1 for w in live if w.status != "stopped" and clock - w.seen_at < 60)
        phase = (
            f"{by_status[UnitStatus.RUNNING]} units running, {by_status[UnitStatus.QUEUED]} "
            f"queued, {by_status[UnitStatus.DONE]} done; {workers} workers"
        )
        files_total = sum(u.files_total for u in counted)
        bytes_total = sum(u.bytes_total for u in counted)
        files_settled = sum(u.files_done + u.files_skipped + u.files_failed for u in counted)
        # The units' walks count the tree as they go: complete once every unit has ended.
        complete = bool(units) and all(u.finished for u in units)
        pace = (done - b0) / (now - t0) if now > t0 else 0.0
        left = max(bytes_total - done, 0)
        eta = 0.0 if complete else left / pace if pace > 0 and left else None
        return Snapshot(
            phase=phase,
            files_total=files_total,
            bytes_total=bytes_total,
            files_done=sum(u.files_done for u in counted),
            bytes_done=done,
            files_skipped=sum(u.files_skipped for u in counted),
            files_failed=sum(u.files_failed for u in counted),
            folders_done=0,
            walk_complete=complete,
            elapsed=now - self.started,
            rate_bps=max(0.0, pace),
            throttled_for=0.0,
            concurrency=workers,
            retries=0,
            throttle_events=0,
            files_counted=max(files_total, files_settled),
            bytes_counted=max(bytes_total, done),
            count_complete=complete,
            files_settled=files_settled,
            bytes_settled=done,
            eta=eta,
        )


def sample(store: StateStore, run: str) -> None:
    """Keep a sample of each running round of the run: its units' counters summed."""
    at = utcnow()
    for unit in job_units(store, run):
        if unit.round_id is None:
            continue
        rnd = store.round(unit.round_id)
        if rnd is None or rnd.status != RoundStatus.RUNNING:
            continue
        units = [u for u in store.units(round_id=unit.round_id) if u.kind != "finish"]
        store.add_round_sample(
            unit.round_id,
            RoundSample(
                at=at,
                files_done=sum(u.files_done for u in units),
                bytes_done=sum(u.bytes_done for u in units),
                files_skipped=sum(u.files_skipped for u in units),
                files_failed=sum(u.files_failed for u in units),
                throttled=0,
            ),
        )
    store.flush()


def results(store: StateStore, run: str, report_dir: Path) -> list[JobResult]:
    """Each job's result once the run is over, its round's reports written below
    `report_dir` (job-ID/round-N; with MigrationJobs.csv for --via migration-api)."""
    out: list[JobResult] = []
    for unit in job_units(store, run):
        spec = JobSpec.from_json(unit.spec["job"])
        result = JobResult(spec.name, spec.source, str(spec.target), "failed", unit.message or "")
        if unit.round_id is None or unit.job_id is None:
            out.append(result)
            continue
        rnd, job = store.round(unit.round_id), store.job(unit.job_id)
        assert rnd is not None and job is not None
        folder = report_dir / f"job-{job.id}" / f"round-{rnd.number}"
        reports, summary = write_round_reports(store, job, rnd, folder)
        if spec.options.get("via") == "migration-api":
            from sharelift.migration_api.report import write_migration_jobs

            write_migration_jobs(store, job, folder)
        target = ResolvedTarget(job.drive_id or "", "", "", job.folder_path or "", None, job.target)
        round_result = RoundResult(
            rnd.id, rnd.status, uploaded=summary.migrated_items, failed=summary.failed_items
        )
        result.outcome = MigrateOutcome(round_result, summary, reports, target)
        result.destination = job.target
        if rnd.status == RoundStatus.COMPLETED:
            result.status = "completed with failures" if summary.failed_items else "completed"
            result.message = ""
        else:
            result.status = str(rnd.status)
        out.append(result)
    return out
