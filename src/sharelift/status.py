"""What `sharelift status` shows: each job, its last round and its items, from the state store;
on a cluster also its runs (units by status, progress summed over every machine) and its
workers (with the age of their last heartbeat). The dashboard reads the same.

A round marked running whose process is gone (same host, dead pid) or whose heartbeat is old is
shown as `interrupted?`: the next run will close it as interrupted and resume. A cluster's round
whose units are not all finished is running, whatever its heartbeat: its queued units wait for
a worker, and a unit whose worker died is taken over.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

from sharelift.state import (
    JobRecord,
    RoundRecord,
    RoundStatus,
    StateStore,
    UnitStatus,
    WorkerRecord,
)

STALE_AFTER_S = 120


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def round_state(rnd: RoundRecord, now: datetime | None = None, *, open_units: bool = False) -> str:
    """The round's status, with `interrupted?` for a running round nobody is running.
    `open_units`: units of a cluster hold the round, not all finished."""
    if rnd.status != RoundStatus.RUNNING:
        return rnd.status
    if open_units:
        return "running"
    now = now or datetime.now(UTC)
    beat = datetime.strptime(rnd.heartbeat_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    if rnd.host == socket.gethostname() and not _alive(rnd.pid):
        return "interrupted?"
    if (now - beat).total_seconds() > STALE_AFTER_S:
        return "interrupted?"
    return "running"


def job_status(store: StateStore, job: JobRecord) -> dict[str, Any]:
    """One job as JSON-ready data."""
    rounds = store.rounds(job.id)
    last = rounds[-1] if rounds else None
    last_doc: dict[str, Any] | None = None
    if last is not None:
        last_doc = {
            "number": last.number,
            "status": round_state(last, open_units=_open_units(store, last.id)),
            "started_at": last.started_at,
            "ended_at": last.ended_at,
            "heartbeat_at": last.heartbeat_at,
            "files_total": last.files_total,
            "files_done": last.files_done,
            "files_skipped": last.files_skipped,
            "files_failed": last.files_failed,
            "bytes_total": last.bytes_total,
            "bytes_done": last.bytes_done,
            "throttled": last.throttled,
        }
    return {
        "id": job.id,
        "name": job.options.get("name", ""),
        "source": job.source,
        "target": job.target,
        "rounds": len(rounds),
        "last_round": last_doc,
        "items": store.count_items(job.id),
    }


def _open_units(store: StateStore, round_id: int) -> bool:
    return any(not u.finished for u in store.units(round_id=round_id))


def worker_state(worker: WorkerRecord, now: float) -> str:
    """idle, busy or stopped, as the worker last said; `lost` when that was longer ago than
    its lease lasts (`now` on the store's clock: the unit it held may be taken over by now)
    and it had not stopped."""
    if worker.status != "stopped" and now - worker.seen_at > worker.lease_ttl:
        return "lost"
    return worker.status


def cluster_status(store: StateStore) -> dict[str, Any]:
    """The runs of a cluster (units by status, and their progress summed) and its workers,
    as JSON-ready data; empty lists on a store no cluster has used."""
    now = store.store_time()
    runs: dict[str, dict[str, Any]] = {}
    for unit in store.units():
        run = runs.setdefault(
            unit.run,
            {"run": unit.run, "units": {s.value: 0 for s in UnitStatus}, "files_total": 0,
             "files_done": 0, "files_failed": 0, "bytes_total": 0, "bytes_done": 0,
             "running": []},
        )  # fmt: skip
        run["units"][unit.status.value] += 1
        if unit.kind != "finish":
            for name in ("files_total", "files_done", "files_failed", "bytes_total", "bytes_done"):
                run[name] += getattr(unit, name)
        if unit.status is UnitStatus.RUNNING:
            lease = None if unit.lease_until is None else round(unit.lease_until - now, 1)
            run["running"].append(
                {
                    "unit": unit.id,
                    "kind": unit.kind,
                    "path": unit.display_path,
                    "owner": unit.owner,
                    "lease_left_s": lease,
                    "attempts": unit.attempts,
                    "files_done": unit.files_done,
                }
            )
    workers = [
        {
            "name": w.name,
            "host": w.host,
            "queues": list(w.queues),
            "status": worker_state(w, now),
            "unit": w.unit_id,
            "heartbeat_age_s": round(now - w.seen_at, 1),
        }
        for w in store.workers()
    ]
    return {"runs": list(runs.values()), "workers": workers}
