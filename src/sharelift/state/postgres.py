"""The PostgreSQL state store: one database that the machines of a cluster share.

`PostgresStateStore` keeps the contract of `sharelift.state.StateStore` (see that module),
as `SqliteStateStore` does, over psycopg 3; `open_state("postgresql://...")` opens one. How:

- The schema is the same ordered list of named migrations as SQLite's
  (`sharelift.state.schema`), in PostgreSQL's words, applied in one transaction under an
  advisory lock, so that workers starting together apply each migration once.
- Writes are grouped in transactions as SQLite's are (`postgres_db.py`); several processes on
  several machines write at once, each to its own items (a unit of work owns its sub-tree).
- Upload URLs are bearer credentials: the database keeps them, so who may read it is decided
  by its roles and `pg_hba.conf` (docs/scale-out.md). The URL's password is never shown.
- Leases are measured on the server's clock (`clock_timestamp()`).

The items table is kept by `PgItemRows` (`postgres_items.py`); the Migration API packages, files
moved aside and old versions to remove, and units and workers, by the parts written once for
both backends (`package_rows.py`, `target_rows.py`, `unit_rows.py`); jobs, rounds and upload
sessions here.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from typing import Any, Self

import psycopg

from sharelift.state.package_rows import PackageRows
from sharelift.state.postgres_db import connect
from sharelift.state.postgres_items import PgItemRows
from sharelift.state.records import (
    JobRecord,
    RoundRecord,
    RoundSample,
    RoundStatus,
    UploadSessionRecord,
    utcnow,
)
from sharelift.state.target_rows import TargetWork
from sharelift.state.unit_rows import UnitRows
from sharelift.urls import hide_password

_JOB_COLUMNS = "id, key, source, target, drive_id, folder_id, folder_path, created_at, options"
_ROUND_COLUMNS = (
    "id, job_id, number, status, started_at, ended_at, heartbeat_at, pid, host, "
    "files_total, bytes_total, files_done, bytes_done, files_skipped, files_failed, throttled, "
    "log_path, throttle_wait, report_dir"
)
_SAMPLE_COLUMNS = (
    "at, files_done, bytes_done, files_skipped, files_failed, throttled, throttle_wait"
)
_SAMPLE_PAGE = 1000
"""Samples per query of `samples_since`."""
_LAST_ID = 2**63 - 1
"""The largest row id (BIGINT)."""
_ROUND_STATUS = {s.value: s for s in RoundStatus}
_FINAL_ROUND_STATUSES = frozenset(RoundStatus) - {RoundStatus.RUNNING}
_PROGRESS_FIELDS = frozenset(
    {
        "files_total",
        "bytes_total",
        "files_done",
        "bytes_done",
        "files_skipped",
        "files_failed",
        "throttled",
        "throttle_wait",
    }
)


def _job(row: Any) -> JobRecord:
    values = list(row)
    values[8] = json.loads(values[8])
    return JobRecord(*values)


def _round(row: Any) -> RoundRecord:
    values = list(row)
    values[3] = _ROUND_STATUS[values[3]]
    return RoundRecord(*values)


class PostgresStateStore(PgItemRows, PackageRows, TargetWork, UnitRows):
    """A sharelift state store in a PostgreSQL database. Open it with
    `sharelift.state.open_state(url)` (or `PostgresStateStore.open`)."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        url: str,
        *,
        commit_every: int,
        commit_interval: float,
    ) -> None:
        super().__init__(conn, commit_every=commit_every, commit_interval=commit_interval)
        self.location = hide_password(url)

    def __repr__(self) -> str:
        return f"PostgresStateStore({self.location})"

    # --- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        url: str,
        *,
        readonly: bool = False,
        commit_every: int = 500,
        commit_interval: float = 0.5,
    ) -> Self:
        """Connect to the database at `url` and bring its schema up to date (with `readonly`,
        it must hold a state store already, and nothing is written). Raises StateError naming
        the database (without its password)."""
        conn = connect(url, readonly=readonly)
        return cls(conn, url, commit_every=commit_every, commit_interval=commit_interval)

    def close(self) -> None:
        """Commit what is pending and close the connection."""
        if self._conn.closed:
            return
        with contextlib.suppress(psycopg.Error):
            self.flush()
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- jobs ----------------------------------------------------------------------------------

    def ensure_job(
        self, key: str, source: str, target: str, options: dict[str, Any] | None = None
    ) -> JobRecord:
        opts = json.dumps(options or {}, sort_keys=True)
        self._write(
            "INSERT INTO jobs (key, source, target, created_at, options) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET source = excluded.source, target = excluded.target, "
            "options = excluded.options",
            (key, source, target, utcnow(), opts),
        )
        self.flush()
        job = self.job_by_key(key)
        assert job is not None
        return job

    def set_job_target(
        self, job_id: int, drive_id: str, folder_id: str | None, folder_path: str
    ) -> None:
        self._write(
            "UPDATE jobs SET drive_id = ?, folder_id = ?, folder_path = ? WHERE id = ?",
            (drive_id, folder_id, folder_path, job_id),
        )
        self.flush()

    def job_by_key(self, key: str) -> JobRecord | None:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE key = ?", (key,))  # noqa: S608
        return _job(rows[0]) if rows else None

    def job(self, job_id: int) -> JobRecord | None:
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))  # noqa: S608
        return _job(rows[0]) if rows else None

    def jobs(self) -> list[JobRecord]:
        return [_job(r) for r in self._read(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY id")]  # noqa: S608

    # --- rounds --------------------------------------------------------------------------------

    def start_round(self, job_id: int, *, log_path: str = "") -> RoundRecord:
        now = utcnow()
        for (stale,) in self._read(
            "SELECT id FROM rounds WHERE job_id = ? AND status = 'running'", (job_id,)
        ):
            self.keep_round_counts(job_id, stale)
        self._write(
            "UPDATE rounds SET status = 'interrupted', ended_at = heartbeat_at "
            "WHERE job_id = ? AND status = 'running'",
            (job_id,),
        )
        ((round_id,),) = self._write(
            "INSERT INTO rounds (job_id, number, status, started_at, heartbeat_at, pid, host, "
            "log_path) SELECT ?, coalesce(max(number), 0) + 1, 'running', ?, ?, ?, ?, ? "
            "FROM rounds WHERE job_id = ? RETURNING id",
            (job_id, now, now, os.getpid(), socket.gethostname(), log_path, job_id),
        )
        self.flush()
        rnd = self.round(int(round_id))
        assert rnd is not None
        return rnd

    def update_round(self, round_id: int, **counters: float) -> None:
        unknown = set(counters) - _PROGRESS_FIELDS
        if unknown:
            raise ValueError(f"unknown round counters: {sorted(unknown)}")
        sets = "".join(f", {name} = ?" for name in counters)
        self._write(
            f"UPDATE rounds SET heartbeat_at = ?{sets} WHERE id = ?",  # noqa: S608 (names checked)
            (utcnow(), *counters.values(), round_id),
        )

    def finish_round(self, round_id: int, status: RoundStatus) -> None:
        if status not in _FINAL_ROUND_STATUSES:
            raise ValueError(f"not a final round status: {status}")
        found = self._read("SELECT job_id, status FROM rounds WHERE id = ?", (round_id,))
        if found and found[0][1] == RoundStatus.RUNNING:
            self.keep_round_counts(found[0][0], round_id)
        now = utcnow()
        self._write(
            "UPDATE rounds SET status = ?, ended_at = ?, heartbeat_at = ? WHERE id = ?",
            (str(status), now, now, round_id),
        )
        self.flush()

    def add_round_sample(self, round_id: int, sample: RoundSample) -> None:
        self._write(
            "INSERT INTO round_samples (round_id, at, files_done, bytes_done, files_skipped, "
            "files_failed, throttled, throttle_wait) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (round_id, at) DO UPDATE SET files_done = excluded.files_done, "
            "bytes_done = excluded.bytes_done, files_skipped = excluded.files_skipped, "
            "files_failed = excluded.files_failed, throttled = excluded.throttled, "
            "throttle_wait = excluded.throttle_wait",
            (
                round_id,
                sample.at,
                sample.files_done,
                sample.bytes_done,
                sample.files_skipped,
                sample.files_failed,
                sample.throttled,
                sample.throttle_wait,
            ),
        )

    def round_samples(self, round_id: int) -> Iterator[RoundSample]:
        rows = self._read(
            f"SELECT {_SAMPLE_COLUMNS} FROM round_samples WHERE round_id = ? ORDER BY at",  # noqa: S608
            (round_id,),
        )
        return (RoundSample(*row) for row in rows)

    def samples_since(self, after: str) -> Iterator[tuple[int, RoundSample]]:
        """Samples of every round written at an instant later than `after`, oldest first, a
        page at a time (through the index on the instant; ties between rounds by round id)."""
        last: tuple[str, int] = (after, _LAST_ID)  # after every round's samples at `after`
        while True:
            page = self._read(
                f"SELECT round_id, {_SAMPLE_COLUMNS} FROM round_samples "  # noqa: S608
                "WHERE at >= ? AND (at, round_id) > (?, ?) ORDER BY at, round_id LIMIT ?",
                (last[0], *last, _SAMPLE_PAGE),
            )
            for row in page:
                yield int(row[0]), RoundSample(*row[1:])
            if len(page) < _SAMPLE_PAGE:
                return
            last = (page[-1][1], int(page[-1][0]))

    def set_round_reports(self, round_id: int, folder: str) -> None:
        self._write("UPDATE rounds SET report_dir = ? WHERE id = ?", (folder, round_id))
        self.flush()

    def latest_rounds(self) -> list[RoundRecord]:
        rows = self._read(
            f"SELECT DISTINCT ON (job_id) {_ROUND_COLUMNS} FROM rounds "  # noqa: S608
            "ORDER BY job_id, number DESC"
        )
        return [_round(r) for r in rows]

    def round(self, round_id: int) -> RoundRecord | None:
        rows = self._read(f"SELECT {_ROUND_COLUMNS} FROM rounds WHERE id = ?", (round_id,))  # noqa: S608
        return _round(rows[0]) if rows else None

    def rounds(self, job_id: int | None = None) -> list[RoundRecord]:
        if job_id is None:
            rows = self._read(f"SELECT {_ROUND_COLUMNS} FROM rounds ORDER BY id")  # noqa: S608
        else:
            rows = self._read(
                f"SELECT {_ROUND_COLUMNS} FROM rounds WHERE job_id = ? ORDER BY number",  # noqa: S608
                (job_id,),
            )
        return [_round(r) for r in rows]

    # --- upload sessions -----------------------------------------------------------------------

    def save_upload_session(
        self, row: int, upload_url: str, expires_at: str | None, size: int, mtime_ns: int
    ) -> None:
        self._write(
            "INSERT INTO upload_sessions "
            "(item_row, upload_url, expires_at, size, mtime_ns, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (item_row) DO UPDATE SET "
            "upload_url = excluded.upload_url, expires_at = excluded.expires_at, "
            "size = excluded.size, mtime_ns = excluded.mtime_ns, created_at = excluded.created_at",
            (row, upload_url, expires_at, size, mtime_ns, utcnow()),
        )
        self.flush()

    def upload_session(self, row: int) -> UploadSessionRecord | None:
        found = self._read(
            "SELECT item_row, upload_url, expires_at, size, mtime_ns, created_at "
            "FROM upload_sessions WHERE item_row = ?",
            (row,),
        )
        return UploadSessionRecord(*found[0]) if found else None

    def drop_upload_session(self, row: int) -> None:
        self._write("DELETE FROM upload_sessions WHERE item_row = ?", (row,))

    def upload_sessions(self, job_id: int) -> list[UploadSessionRecord]:
        rows = self._read(
            "SELECT s.item_row, s.upload_url, s.expires_at, s.size, s.mtime_ns, s.created_at "
            "FROM upload_sessions s JOIN items i ON i.id = s.item_row WHERE i.job_id = ?",
            (job_id,),
        )
        return [UploadSessionRecord(*r) for r in rows]

    # --- integrity -----------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Consistency problems, as sentences; empty when the store is sound (the database
        keeps its own pages sound: there is no integrity pragma to run)."""
        problems: list[str] = []
        for (path,) in self._read(
            "SELECT path FROM items WHERE status = 'done' AND kind = 'file' "
            "AND (item_id IS NULL OR quick_xor IS NULL)"
        ):
            problems.append(f"{os.fsdecode(path)!r} is done without a target id and hash")
        for (path,) in self._read(
            "SELECT i.path FROM upload_sessions s JOIN items i ON i.id = s.item_row "
            "WHERE i.status = 'done'"
        ):
            problems.append(f"{os.fsdecode(path)!r} is done but still holds an upload session")
        return problems
