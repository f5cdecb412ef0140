"""Units of work and workers, for both backends: the `units` and `workers` tables.

`UnitRows` is the part of a state store that keeps them; its methods keep the contract of
`sharelift.state.StateStore` and each commits before returning. The SQL is written once
(`portable.py`); leases are measured on the store's clock (`_NOW`, in epoch seconds).
"""

# The SQL here is put together from constants and checked counter names only.
# ruff: noqa: S608

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from sharelift.state.portable import PortableSql
from sharelift.state.records import (
    UNIT_COUNTERS,
    NewUnit,
    UnitCount,
    UnitRecord,
    UnitStatus,
    WorkerRecord,
    utcnow,
)

UNIT_COLUMNS = (
    "id, key, run, kind, queue, job_id, round_id, parent, path, spec, status, owner, "
    "lease_until, heartbeat_at, attempts, not_before, published_at, created_at, started_at, "
    "ended_at, message, files_total, bytes_total, files_done, bytes_done, files_skipped, "
    "files_failed"
)
WORKER_COLUMNS = (
    "name, host, pid, queues, status, unit_id, started_at, heartbeat_at, seen_at, throttled_until, "
    "lease_ttl"
)
FINAL = frozenset({UnitStatus.DONE, UnitStatus.FAILED})
_SUMMED = ("files_total", "bytes_total", "files_done", "bytes_done", "files_skipped",
           "files_failed")  # fmt: skip
_REFRESH_ROUND = (
    f"UPDATE rounds SET ({', '.join(_SUMMED)}) = (SELECT "
    + ", ".join(f"coalesce(sum(u.{name}), 0)" for name in _SUMMED)
    + " FROM units u WHERE u.round_id = rounds.id AND u.kind != 'finish'), "
    "heartbeat_at = ?, host = ?, pid = ? "
    "WHERE id = (SELECT round_id FROM units WHERE id = ?) AND status = 'running'"
)
"""A cluster round's counters are its units' (a finish unit moves no file), summed."""


def unit_record(row: Sequence[Any]) -> UnitRecord:
    """A `units` row (selected as UNIT_COLUMNS) as a record."""
    values = list(row)
    values[8] = bytes(values[8])
    values[9] = json.loads(values[9])
    values[10] = UnitStatus(values[10])
    return UnitRecord(*values)


def worker_record(row: Sequence[Any]) -> WorkerRecord:
    """A `workers` row (selected as WORKER_COLUMNS) as a record."""
    values = list(row)
    values[3] = tuple(q for q in values[3].split(",") if q)
    return WorkerRecord(*values)


def counter_sets(counters: dict[str, int], mark: str) -> tuple[str, list[int]]:
    """`, name = ?` for each counter (names checked), and their values."""
    unknown = set(counters) - UNIT_COUNTERS
    if unknown:
        raise ValueError(f"unknown unit counters: {sorted(unknown)}")
    return "".join(f", {name} = {mark}" for name in counters), list(counters.values())


class UnitRows(PortableSql):
    """The `units` and `workers` tables of a state store (see the module docstring)."""

    def _commit_one(self, sql: str, params: Iterable[Any]) -> list[Any]:
        """Run one write in a transaction of its own, committed before returning."""
        self.flush()
        rows = self._write(self._q(sql.replace("{NOW}", self._NOW)), params)
        self.flush()
        return rows

    def store_time(self) -> float:
        ((now,),) = self._read(f"SELECT {self._NOW}")
        return float(now)

    def add_unit(self, unit: NewUnit, *, owner: str | None = None) -> tuple[int, bool] | None:
        values: list[Any] = [
            unit.key, unit.run, unit.kind, unit.queue, unit.job_id, unit.round_id, unit.parent,
            unit.path, json.dumps(unit.spec, sort_keys=True), utcnow(),
        ]  # fmt: skip
        guard = "1 = 1"
        if owner is not None:
            guard = (
                "EXISTS (SELECT 1 FROM units WHERE id = ? AND owner = ? "
                "AND status = 'running' AND lease_until >= {NOW})"
            )
            values += [unit.parent, owner]
        made = self._commit_one(
            "INSERT INTO units (key, run, kind, queue, job_id, round_id, parent, path, spec, "
            f"status, created_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ? WHERE {guard} "
            "ON CONFLICT (key) DO NOTHING RETURNING id",
            values,
        )
        if made:
            return int(made[0][0]), True
        found = self._read("SELECT id FROM units WHERE key = ?", (unit.key,))
        if not found or (owner is not None and not self._holds(unit.parent, owner)):
            return None
        return int(found[0][0]), False

    def _holds(self, unit_id: int | None, owner: str) -> bool:
        return bool(
            self._read(
                "SELECT 1 FROM units WHERE id = ? AND owner = ? AND status = 'running' "
                f"AND lease_until >= {self._NOW}",
                (unit_id, owner),
            )
        )

    def unit(self, unit_id: int) -> UnitRecord | None:
        rows = self._read(f"SELECT {UNIT_COLUMNS} FROM units WHERE id = ?", (unit_id,))
        return unit_record(rows[0]) if rows else None

    def units(
        self,
        *,
        run: str | None = None,
        round_id: int | None = None,
        parent: int | None = None,
        status: UnitStatus | None = None,
    ) -> list[UnitRecord]:
        where, params = ["1 = 1"], []
        for column, value in (
            ("run", run), ("round_id", round_id), ("parent", parent), ("status", status)
        ):  # fmt: skip
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self._read(
            f"SELECT {UNIT_COLUMNS} FROM units WHERE {' AND '.join(where)} ORDER BY id",
            params,
        )
        return [unit_record(r) for r in rows]

    def claim_unit(self, unit_id: int, owner: str, ttl: float) -> UnitRecord | None:
        now = utcnow()
        rows = self._commit_one(
            "UPDATE units SET owner = ?, lease_until = {NOW} + ?, heartbeat_at = ?, "
            "status = 'running', attempts = attempts + 1, started_at = coalesce(started_at, ?) "
            "WHERE id = ? AND (status = 'queued' OR (status = 'running' AND "
            "(owner = ? OR lease_until < {NOW}))) AND not_before <= {NOW} RETURNING id",
            (owner, ttl, now, now, unit_id, owner),
        )
        return self.unit(unit_id) if rows else None

    def unit_counts(self) -> list[UnitCount]:
        rows = self._read(
            "SELECT round_id, status, count(*) FROM units WHERE round_id IN "
            "(SELECT id FROM rounds r WHERE number = "
            "(SELECT max(number) FROM rounds WHERE job_id = r.job_id)) "
            "OR (round_id IS NULL AND status IN ('queued', 'running')) "
            "GROUP BY round_id, status ORDER BY round_id, status"
        )
        return [UnitCount(r, UnitStatus(s), int(n)) for r, s, n in rows]

    def renew_lease(self, unit_id: int, owner: str, ttl: float, **counters: int) -> bool:
        sets, values = counter_sets(counters, "?")
        now = utcnow()
        self.flush()
        renewed = self._write(
            self._q(
                f"UPDATE units SET lease_until = {self._NOW} + ?, heartbeat_at = ?{sets} "
                "WHERE id = ? AND owner = ? AND status = 'running' RETURNING id"
            ),
            (ttl, now, *values, unit_id, owner),
        )
        if renewed:
            self._write(self._q(_REFRESH_ROUND), (now, socket.gethostname(), os.getpid(), unit_id))
        self.flush()
        return bool(renewed)

    def set_unit_round(self, unit_id: int, owner: str, job_id: int, round_id: int) -> bool:
        rows = self._commit_one(
            "UPDATE units SET job_id = ?, round_id = ? "
            "WHERE id = ? AND owner = ? AND status = 'running' RETURNING id",
            (job_id, round_id, unit_id, owner),
        )
        return bool(rows)

    def end_unit(
        self,
        unit_id: int,
        owner: str,
        status: UnitStatus,
        message: str | None = None,
        **counters: int,
    ) -> bool:
        if status not in FINAL:
            raise ValueError(f"not a final unit status: {status}")
        sets, values = counter_sets(counters, "?")
        rows = self._commit_one(
            f"UPDATE units SET status = ?, lease_until = NULL, ended_at = ?, message = ?{sets} "
            "WHERE id = ? AND owner = ? AND status = 'running' RETURNING id",
            (status.value, utcnow(), message, *values, unit_id, owner),
        )
        return bool(rows)

    def release_unit(
        self,
        unit_id: int,
        owner: str,
        *,
        delay: float = 0.0,
        message: str | None = None,
        **counters: int,
    ) -> bool:
        sets, values = counter_sets(counters, "?")
        rows = self._commit_one(
            "UPDATE units SET status = 'queued', owner = NULL, lease_until = NULL, "
            f"not_before = {{NOW}} + ?, published_at = NULL, message = ?{sets} "
            "WHERE id = ? AND owner = ? AND status = 'running' RETURNING id",
            (delay, message, *values, unit_id, owner),
        )
        return bool(rows)

    def due_units(
        self, queues: Sequence[str], *, republish_after: float, waiting: bool
    ) -> list[UnitRecord]:
        if not queues:
            return []
        in_queues, params = self._in("queue", queues)
        rows = self._commit_one(
            f"UPDATE units SET published_at = {{NOW}} WHERE {in_queues} AND ("
            "(status = 'queued' AND not_before <= {NOW} AND (published_at IS NULL OR "
            "(? AND published_at < {NOW} - ?))) OR "
            "(status = 'running' AND lease_until < {NOW} AND "
            "(published_at IS NULL OR published_at < {NOW} - ?))) RETURNING id",
            (*params, waiting, republish_after, republish_after),
        )
        found = [self.unit(int(r[0])) for r in rows]
        return sorted((u for u in found if u is not None), key=lambda u: u.id)

    def mark_published(self, unit_ids: Iterable[int]) -> None:
        self.flush()
        self._write_many(
            self._q(f"UPDATE units SET published_at = {self._NOW} WHERE id = ?"),
            [(i,) for i in unit_ids],
        )
        self.flush()

    def beat_worker(
        self,
        name: str,
        *,
        host: str,
        pid: int,
        queues: Sequence[str],
        status: str,
        unit_id: int | None,
        throttled_until: float = 0.0,
        lease_ttl: float = 60.0,
    ) -> None:
        now = utcnow()
        self._commit_one(
            f"INSERT INTO workers ({WORKER_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, {NOW}, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET status = excluded.status, "
            "unit_id = excluded.unit_id, heartbeat_at = excluded.heartbeat_at, "
            "seen_at = excluded.seen_at, throttled_until = excluded.throttled_until, "
            "lease_ttl = excluded.lease_ttl",
            (name, host, pid, ",".join(queues), status, unit_id, now, now, throttled_until,
             lease_ttl),
        )  # fmt: skip

    def workers(self) -> list[WorkerRecord]:
        rows = self._read(f"SELECT {WORKER_COLUMNS} FROM workers ORDER BY name")
        return [worker_record(r) for r in rows]
