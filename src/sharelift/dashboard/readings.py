"""What the dashboard shows, read from the state store: one `Reading` per look.

A look costs the store a few small queries whatever the number of items: every job
(`StateStore.jobs`) with its last round (`StateStore.latest_rounds`: the round's own counters,
which the engine's progress saver refreshes every ~2 s, and on a cluster each worker's
heartbeat, as the sums of the round's units), the throughput samples written since the last
look (`StateStore.samples_since`, through an index on their time; see `throughput.py`), the
Migration API packages counted (`StateStore.package_counts`: one grouped query through
indexes; see `migration.py`), and the workers and units of a cluster (`workers.py`). No item
is read: a job's figures are its last round's counters.

A job's state is its last round's (`sharelift status`'s reading of a round: a running round
whose process is gone or whose heartbeat is old is `interrupted?`, unless units of a cluster
still hold it), with `completed` split by whether files failed, and `not started` for a job
without a round.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sharelift.dashboard.throughput import Chart, Throughput
from sharelift.dashboard.workers import Cluster, WorkerView, read_cluster
from sharelift.report.summary import parse_time
from sharelift.state import JobRecord, PackageCount, RoundRecord, RoundStatus, StateStore
from sharelift.status import round_state

JOB_STATES = (
    "running",
    "interrupted?",
    "failed",
    "completed with failures",
    "interrupted",
    "completed",
    "not started",
)
"""Every state a job can be in, in the order the overview lists them (what needs a look first)."""


@dataclass(frozen=True)
class JobView:
    """One job as the dashboard shows it: its last round's figures."""

    id: int
    name: str
    source: str
    target: str
    state: str
    round_number: int
    files_total: int
    files_settled: int
    """Files done, skipped (unchanged included) or failed."""
    files_done: int
    files_failed: int
    bytes_total: int
    bytes_done: int
    throttled: int
    throttle_wait: float
    started_at: str
    last_activity: str
    """The round's last heartbeat (its end for a closed round); "" for a job without one."""
    host: str
    pid: int | None
    round_id: int | None = None

    @property
    def files_percent(self) -> float:
        return _percent(self.files_settled, self.files_total, self.state)

    @property
    def bytes_percent(self) -> float:
        return _percent(self.bytes_done, self.bytes_total, self.state)


def _percent(done: int, total: int, state: str) -> float:
    if total <= 0:
        return 100.0 if state.startswith("completed") else 0.0
    return min(100.0, 100.0 * done / total)


@dataclass(frozen=True)
class Reading:
    """Everything the overview shows, at one instant (`taken_at`, ISO UTC)."""

    taken_at: str
    jobs: list[JobView]
    chart: Chart
    rate_now: float
    """Bytes per second over the last `Throughput.NOW` seconds, every running round summed."""
    files_rate_now: float
    by_state: dict[str, int] = field(default_factory=dict)
    packages: list[PackageCount] = field(default_factory=list)
    """The Migration API packages of the jobs' last rounds and those still open, counted."""
    cluster: Cluster = field(default_factory=Cluster)

    @property
    def workers(self) -> list[WorkerView]:
        """The cluster's workers, then the process of each round running on one machine."""
        alone = [
            WorkerView(
                machine=j.host,
                process=f"pid {j.pid}" if j.pid else "",
                queues=(),
                state=j.state,
                heartbeat_at=j.last_activity,
                heartbeat_age=None,
                job_id=j.id,
                round_number=j.round_number,
            )
            for j in self.jobs
            if j.state in ("running", "interrupted?") and j.round_id not in self.cluster.open_rounds
        ]
        return [*self.cluster.workers, *alone]

    @property
    def files_total(self) -> int:
        return sum(j.files_total for j in self.jobs)

    @property
    def files_settled(self) -> int:
        return sum(j.files_settled for j in self.jobs)

    @property
    def files_done(self) -> int:
        return sum(j.files_done for j in self.jobs)

    @property
    def files_failed(self) -> int:
        return sum(j.files_failed for j in self.jobs)

    @property
    def bytes_total(self) -> int:
        return sum(j.bytes_total for j in self.jobs)

    @property
    def bytes_done(self) -> int:
        return sum(j.bytes_done for j in self.jobs)

    @property
    def throttled(self) -> int:
        return sum(j.throttled for j in self.jobs)

    @property
    def throttle_wait(self) -> float:
        return sum(j.throttle_wait for j in self.jobs)

    @property
    def running(self) -> list[JobView]:
        return [j for j in self.jobs if j.state == "running"]

    @property
    def eta_seconds(self) -> float | None:
        """Seconds until the running jobs have sent the bytes their walks found so far, at
        the present rate (None when nothing runs or nothing moves). Walks still going, and
        jobs of a job file not started yet, add to it: an estimate, never a promise."""
        running = self.running
        if not running or self.rate_now <= 0:
            return None
        left = sum(max(j.bytes_total - j.bytes_done, 0) for j in running)
        files_left = sum(max(j.files_total - j.files_settled, 0) for j in running)
        by_bytes = left / self.rate_now
        by_files = files_left / self.files_rate_now if self.files_rate_now > 0 else 0.0
        # Small files are bound by requests, large ones by bytes: the slower reading holds.
        return max(by_bytes, by_files)

    def job(self, job_id: int) -> JobView | None:
        return next((j for j in self.jobs if j.id == job_id), None)


def job_view(
    job: JobRecord, rnd: RoundRecord | None, now: datetime, *, open_units: bool = False
) -> JobView:
    """A job and its last round (None: the job has none yet); `open_units`: a cluster's
    units hold the round, not all finished."""
    name = str(job.options.get("name") or "")
    if rnd is None:
        return JobView(
            job.id, name, job.source, job.target, "not started", 0, 0, 0, 0, 0, 0, 0, 0, 0.0,
            "", "", "", None,
        )  # fmt: skip
    state = str(round_state(rnd, now, open_units=open_units))
    if state == RoundStatus.COMPLETED and rnd.files_failed:
        state = "completed with failures"
    return JobView(
        id=job.id,
        name=name,
        source=job.source,
        target=job.target,
        state=state,
        round_number=rnd.number,
        files_total=rnd.files_total,
        files_settled=rnd.files_done + rnd.files_skipped + rnd.files_failed,
        files_done=rnd.files_done,
        files_failed=rnd.files_failed,
        bytes_total=rnd.bytes_total,
        bytes_done=rnd.bytes_done,
        throttled=rnd.throttled,
        throttle_wait=rnd.throttle_wait,
        started_at=rnd.started_at,
        last_activity=rnd.ended_at or rnd.heartbeat_at,
        host=rnd.host or "",
        pid=rnd.pid,
        round_id=rnd.id,
    )


class Reader:
    """Takes readings of one store; keeps the throughput between them (see the module
    docstring for what a look costs). Belongs to one thread at a time."""

    def __init__(self) -> None:
        self.throughput = Throughput()

    def read(self, store: StateStore, now: datetime | None = None) -> Reading:
        now = now or datetime.now(UTC)
        jobs = store.jobs()
        latest = {r.job_id: r for r in store.latest_rounds()}
        self.throughput.take(store.samples_since(self.throughput.since()))
        cluster = read_cluster(store)
        views = []
        for job in jobs:
            rnd = latest.get(job.id)
            held = rnd is not None and rnd.id in cluster.open_rounds
            views.append(job_view(job, rnd, now, open_units=held))
        counted = Counter(v.state for v in views)
        current = list(latest.values())
        starts = [parse_time(r.started_at) for r in current]
        window_start = min(starts) if starts else now
        running = {r.id for r in current if r.status == RoundStatus.RUNNING}
        chart = self.throughput.chart({r.id for r in current}, window_start, now)
        rate, files_rate = self.throughput.rate_now(running, now)
        return Reading(
            taken_at=now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            jobs=views,
            chart=chart,
            rate_now=rate,
            files_rate_now=files_rate,
            by_state={s: counted[s] for s in JOB_STATES if counted[s]},
            packages=store.package_counts(),
            cluster=cluster,
        )
