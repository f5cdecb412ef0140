"""The SQLite state store: one file holds every job, round, item and upload session.

`SqliteStateStore` keeps the contract of `sharelift.state.StateStore` (see that module for it).
How, here:

- WAL journal with `synchronous=NORMAL`: a killed process loses nothing that was committed, and
  `sharelift status` can read while a run writes.
- Writes are grouped (`sqlite_db.py`): a commit at most every `commit_interval` seconds or
  `commit_every` writes, and always on `flush()` and `close()`.
- The file and its folder are private (0600 / 0700): upload URLs are pre-authenticated.
- The schema is the ordered list of named migrations in `sharelift.state.schema`, applied once
  each, in a transaction.

The items table is kept by `ItemRows` (`sqlite_items.py`), the Migration API packages by
`PackageRows` (`package_rows.py`), files moved aside and old versions to remove by
`TargetWork` (`target_rows.py`), units of work and workers by `UnitRows` (`unit_rows.py`);
jobs, rounds and upload sessions here. The last three are shared with PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from sharelift.state.interface import StateError
from sharelift.state.package_rows import PackageRows
from sharelift.state.records import (
    JobRecord,
    RoundRecord,
    RoundSample,
    RoundStatus,
    UploadSessionRecord,
    utcnow,
)
from sharelift.state.schema import MIGRATIONS, SQLITE, statements
from sharelift.state.sqlite_db import ROUND_STATUS
from sharelift.state.sqlite_items import ItemRows
from sharelift.state.target_rows import TargetWork
from sharelift.state.unit_rows import UnitRows

_ROUND_COLUMNS = (
    f"id, job_id, number, {ROUND_STATUS}, started_at, ended_at, heartbeat_at, pid, host, "
    "files_total, bytes_total, files_done, bytes_done, files_skipped, files_failed, throttled, "
    "log_path, throttle_wait, report_dir"
)
_SAMPLE_COLUMNS = (
    "at, files_done, bytes_done, files_skipped, files_failed, throttled, throttle_wait"
)
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


class SqliteStateStore(ItemRows, PackageRows, TargetWork, UnitRows):
    """A sharelift state store in one SQLite file. Open it with
    `sharelift.state.open_state(path)` (or `SqliteStateStore.open`)."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, commit_every: int, commit_interval: float
    ) -> None:
        super().__init__(conn, commit_every=commit_every, commit_interval=commit_interval)
        self.path = path

    # --- opening and closing -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        commit_every: int = 500,
        commit_interval: float = 0.5,
    ) -> Self:
        """Open (creating if needed) the store at `path` and bring its schema up to date.

        Raises StateError naming the file when it cannot be opened or is not a state store.
        With `readonly`, the file must exist and nothing is migrated or written.
        """
        path = Path(path)
        try:
            if readonly:
                if not path.is_file():
                    raise StateError(f"no state store at {path}")
                conn = sqlite3.connect(
                    f"file:{path}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    timeout=10,
                    detect_types=sqlite3.PARSE_COLNAMES,
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
                conn = sqlite3.connect(
                    path, isolation_level=None, timeout=30, detect_types=sqlite3.PARSE_COLNAMES
                )
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                _migrate(conn)
            else:
                conn.execute("SELECT count(*) FROM jobs").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StateError(f"{path} is not a usable sharelift state store: {exc}") from exc
        except OSError as exc:
            raise StateError(f"cannot open state store {path}: {exc.strerror}") from exc
        return cls(conn, path, commit_every=commit_every, commit_interval=commit_interval)

    def close(self) -> None:
        """Commit what is pending and close the file."""
        with contextlib.suppress(sqlite3.ProgrammingError):
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
        """The job with this key, created if new (its source/target/options refreshed if not)."""
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
        """Remember where the job's target resolved to."""
        self._write(
            "UPDATE jobs SET drive_id = ?, folder_id = ?, folder_path = ? WHERE id = ?",
            (drive_id, folder_id, folder_path, job_id),
        )
        self.flush()

    def job_by_key(self, key: str) -> JobRecord | None:
        row = self._conn.execute(
            "SELECT id, key, source, target, drive_id, folder_id, folder_path, created_at, options "
            "FROM jobs WHERE key = ?",
            (key,),
        ).fetchone()
        return _job(row) if row else None

    def job(self, job_id: int) -> JobRecord | None:
        row = self._conn.execute(
            "SELECT id, key, source, target, drive_id, folder_id, folder_path, created_at, options "
            "FROM jobs WHERE id = ?",
            (job_id,),
        ).fetchone()
        return _job(row) if row else None

    def jobs(self) -> list[JobRecord]:
        rows = self._conn.execute(
            "SELECT id, key, source, target, drive_id, folder_id, folder_path, created_at, options "
            "FROM jobs ORDER BY id"
        ).fetchall()
        return [_job(r) for r in rows]

    # --- rounds --------------------------------------------------------------------------------

    def start_round(self, job_id: int, *, log_path: str = "") -> RoundRecord:
        """Open the next round of a job. A round still marked running is closed as interrupted
        (its counts kept first, as `finish_round` keeps them)."""
        now = utcnow()
        stale = self._conn.execute(
            "SELECT id FROM rounds WHERE job_id = ? AND status = 'running'", (job_id,)
        ).fetchall()
        for (stale_id,) in stale:
            self.keep_round_counts(job_id, stale_id)
        self._write(
            "UPDATE rounds SET status = 'interrupted', ended_at = heartbeat_at "
            "WHERE job_id = ? AND status = 'running'",
            (job_id,),
        )
        (number,) = self._conn.execute(
            "SELECT coalesce(max(number), 0) + 1 FROM rounds WHERE job_id = ?", (job_id,)
        ).fetchone()
        ((round_id,),) = self._write(
            "INSERT INTO rounds (job_id, number, status, started_at, heartbeat_at, pid, host, "
            "log_path) VALUES (?, ?, 'running', ?, ?, ?, ?, ?) RETURNING id",
            (job_id, number, now, now, os.getpid(), socket.gethostname(), log_path),
        )
        self.flush()
        rnd = self.round(int(round_id))
        assert rnd is not None
        return rnd

    def update_round(self, round_id: int, **counters: float) -> None:
        """Refresh a running round's progress counters and heartbeat."""
        unknown = set(counters) - _PROGRESS_FIELDS
        if unknown:
            raise ValueError(f"unknown round counters: {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in counters)
        sql = f"UPDATE rounds SET heartbeat_at = ?{', ' if sets else ''}{sets} WHERE id = ?"  # noqa: S608 (names checked above)
        self._write(sql, (utcnow(), *counters.values(), round_id))

    def finish_round(self, round_id: int, status: RoundStatus) -> None:
        """Close a round as completed, failed or interrupted, keeping what its walk met
        counted (`round_counts` of a closed round)."""
        if status not in _FINAL_ROUND_STATUSES:
            raise ValueError(f"not a final round status: {status}")
        found = self._conn.execute(
            "SELECT job_id, status FROM rounds WHERE id = ?", (round_id,)
        ).fetchone()
        if found is not None and found[1] == RoundStatus.RUNNING:
            self.keep_round_counts(found[0], round_id)
        now = utcnow()
        self._write(
            "UPDATE rounds SET status = ?, ended_at = ?, heartbeat_at = ? WHERE id = ?",
            (status, now, now, round_id),
        )
        self.flush()

    def add_round_sample(self, round_id: int, sample: RoundSample) -> None:
        """Keep a running round's counters at one instant (grouped with the other writes)."""
        self._write(
            "INSERT OR REPLACE INTO round_samples (round_id, at, files_done, bytes_done, "
            "files_skipped, files_failed, throttled, throttle_wait) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
        cur = self._conn.execute(
            f"SELECT {_SAMPLE_COLUMNS} FROM round_samples WHERE round_id = ? ORDER BY at",  # noqa: S608
            (round_id,),
        )
        return (RoundSample(*row) for row in cur)

    def samples_since(self, after: str) -> Iterator[tuple[int, RoundSample]]:
        """Samples of every round written at an instant later than `after`, oldest first
        (through the index on the instant: only the new rows are read)."""
        cur = self._conn.execute(
            f"SELECT round_id, {_SAMPLE_COLUMNS} FROM round_samples "  # noqa: S608
            "WHERE at > ? ORDER BY at",
            (after,),
        )
        return ((row[0], RoundSample(*row[1:])) for row in cur)

    def set_round_reports(self, round_id: int, folder: str) -> None:
        """Remember where the round's reports are written."""
        self._write("UPDATE rounds SET report_dir = ? WHERE id = ?", (folder, round_id))
        self.flush()

    def round(self, round_id: int) -> RoundRecord | None:
        row = self._conn.execute(
            f"SELECT {_ROUND_COLUMNS} FROM rounds WHERE id = ?",  # noqa: S608
            (round_id,),
        ).fetchone()
        return RoundRecord(*row) if row else None

    def latest_rounds(self) -> list[RoundRecord]:
        """The last round of every job that has one, by job: one query through the
        (job_id, number) index."""
        rows = self._conn.execute(
            f"SELECT {_ROUND_COLUMNS} FROM rounds r WHERE number = "  # noqa: S608
            "(SELECT max(number) FROM rounds WHERE job_id = r.job_id) ORDER BY job_id"
        ).fetchall()
        return [RoundRecord(*r) for r in rows]

    def rounds(self, job_id: int | None = None) -> list[RoundRecord]:
        if job_id is None:
            rows = self._conn.execute(
                f"SELECT {_ROUND_COLUMNS} FROM rounds ORDER BY id"  # noqa: S608
            ).fetchall()
        else:
            rows = self._conn.execute(
                f"SELECT {_ROUND_COLUMNS} FROM rounds WHERE job_id = ? ORDER BY number",  # noqa: S608
                (job_id,),
            ).fetchall()
        return [RoundRecord(*r) for r in rows]

    # --- upload sessions -----------------------------------------------------------------------

    def save_upload_session(
        self, row: int, upload_url: str, expires_at: str | None, size: int, mtime_ns: int
    ) -> None:
        """Persist a session the moment it exists, so that a killed run can resume or cancel it."""
        self._write(
            "INSERT OR REPLACE INTO upload_sessions "
            "(item_row, upload_url, expires_at, size, mtime_ns, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (row, upload_url, expires_at, size, mtime_ns, utcnow()),
        )
        self.flush()

    def upload_session(self, row: int) -> UploadSessionRecord | None:
        found = self._conn.execute(
            "SELECT item_row, upload_url, expires_at, size, mtime_ns, created_at "
            "FROM upload_sessions WHERE item_row = ?",
            (row,),
        ).fetchone()
        return UploadSessionRecord(*found) if found else None

    def drop_upload_session(self, row: int) -> None:
        self._write("DELETE FROM upload_sessions WHERE item_row = ?", (row,))

    def upload_sessions(self, job_id: int) -> list[UploadSessionRecord]:
        rows = self._conn.execute(
            "SELECT s.item_row, s.upload_url, s.expires_at, s.size, s.mtime_ns, s.created_at "
            "FROM upload_sessions s JOIN items i ON i.id = s.item_row WHERE i.job_id = ?",
            (job_id,),
        ).fetchall()
        return [UploadSessionRecord(*r) for r in rows]

    # --- integrity -----------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Consistency problems, as sentences; empty when the store is sound."""
        problems: list[str] = []
        (verdict,) = self._conn.execute("PRAGMA integrity_check").fetchone()
        if verdict != "ok":
            problems.append(f"sqlite integrity: {verdict}")
        for (path,) in self._conn.execute(
            "SELECT path FROM items WHERE status = 'done' AND kind = 'file' "
            "AND (item_id IS NULL OR quick_xor IS NULL)"
        ):
            problems.append(f"{os.fsdecode(path)!r} is done without a target id and hash")
        for (path,) in self._conn.execute(
            "SELECT i.path FROM upload_sessions s JOIN items i ON i.id = s.item_row "
            "WHERE i.status = 'done'"
        ):
            problems.append(f"{os.fsdecode(path)!r} is done but still holds an upload session")
        return problems


def _job(row: tuple[Any, ...]) -> JobRecord:
    return JobRecord(
        id=row[0],
        key=row[1],
        source=row[2],
        target=row[3],
        drive_id=row[4],
        folder_id=row[5],
        folder_path=row[6],
        created_at=row[7],
        options=json.loads(row[8]),
    )


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
    )
    applied = {name for (name,) in conn.execute("SELECT name FROM schema_migrations")}
    known = {name for name, _ in MIGRATIONS}
    if unknown := applied - known:
        raise sqlite3.DatabaseError(
            f"written by a newer sharelift (unknown migrations {sorted(unknown)})"
        )
    for name, sql in MIGRATIONS:
        if name in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements(sql, SQLITE):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, utcnow())
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
