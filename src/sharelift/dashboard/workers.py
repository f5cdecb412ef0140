"""Who runs what: the workers part of a reading, from the state store.

On a cluster (`sharelift worker`), each worker process's row in `workers` says which machine it
is on, which queues it takes, what it is doing (`idle`, `busy` on a unit, `stopped`) and when
its heartbeat last came, on the store's clock; a worker silent for longer than its leases last
(`--lease-ttl`) has not stopped but is gone (`lost`, marked stale): its unit's lease has
lapsed and another worker takes the unit over. The units it runs come from `StateStore.units(status=
running)` (one row per busy worker at most), and the units by status from
`StateStore.unit_counts` (each job's last round, and the jobs not yet opened): four small
queries whatever the number of items or units.

A round run on one machine (`sharelift migrate`, no cluster) is shown as a worker of its own:
its host, its process, its heartbeat (the round's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sharelift.state import StateStore, UnitStatus
from sharelift.status import worker_state

UNIT_STATES = tuple(s.value for s in UnitStatus)
"""The units' statuses, in the order the overview lists them."""


@dataclass(frozen=True)
class UnitView:
    """The unit a worker runs."""

    id: int
    kind: str
    path: str
    job_id: int | None


@dataclass(frozen=True)
class WorkerView:
    """One worker process: a cluster's worker, or the process of a round on one machine."""

    machine: str
    process: str
    """The worker's name (HOST:PID), or `pid N` for a round on one machine."""
    queues: tuple[str, ...]
    state: str
    """idle, busy, stopped or lost for a cluster's worker; a round's state otherwise."""
    heartbeat_at: str
    """ISO UTC, as the worker's clock wrote it."""
    heartbeat_age: float | None
    """Seconds since the heartbeat on the store's clock (None: read from the round's time)."""
    unit: UnitView | None = None
    job_id: int | None = None
    round_number: int = 0

    @property
    def stale(self) -> bool:
        return self.state in ("lost", "interrupted?")


@dataclass(frozen=True)
class Cluster:
    """The cluster's part of a reading: its workers, its units by status, and the rounds whose
    units are not all finished (those rounds are running, whatever their heartbeat)."""

    workers: list[WorkerView] = field(default_factory=list)
    units: dict[str, int] = field(default_factory=dict)
    open_rounds: frozenset[int] = frozenset()

    @property
    def units_total(self) -> int:
        return sum(self.units.values())


def read_cluster(store: StateStore) -> Cluster:
    """The workers and units of the store (an empty `Cluster` where no cluster ran)."""
    counts = store.unit_counts()
    workers = store.workers()
    if not counts and not workers:
        return Cluster()
    units = {s: sum(c.units for c in counts if c.status == s) for s in UNIT_STATES}
    open_rounds = frozenset(
        c.round_id
        for c in counts
        if c.round_id is not None and c.status in (UnitStatus.QUEUED, UnitStatus.RUNNING)
    )
    running = {u.id: u for u in store.units(status=UnitStatus.RUNNING)}
    now = store.store_time()
    views = []
    for w in workers:
        state = worker_state(w, now)
        if state == "stopped":
            continue  # gone for good, by its own word
        unit = running.get(w.unit_id) if w.unit_id is not None and state == "busy" else None
        views.append(
            WorkerView(
                machine=w.host,
                process=w.name,
                queues=w.queues,
                state=state,
                heartbeat_at=w.heartbeat_at,
                heartbeat_age=max(now - w.seen_at, 0.0),
                unit=None
                if unit is None
                else UnitView(unit.id, unit.kind, unit.display_path, unit.job_id),
                job_id=None if unit is None else unit.job_id,
            )
        )
    return Cluster(views, {s: n for s, n in units.items() if n}, open_rounds)
