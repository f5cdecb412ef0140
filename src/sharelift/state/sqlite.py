"""The SQLite state store: one file holds every job, round, item and upload session.

`SqliteStateStore` keeps the contract of `sharelift.state.StateStore` (see that module for it).
How, here:

- WAL journal with `synchronous=NORMAL`: a killed process loses nothing that was committed, and
  `sharelift status` can read while a run writes.
- Writes are grouped: `commit()` runs at most every `commit_interval` seconds or `commit_every`
  writes (and always on `flush()` and `close()`).
- The file and its folder are private (0600 / 0700): upload URLs are pre-authenticated.
- The schema is the ordered list of named migrations in `sharelift.state.schema`, applied once
  each, in a transaction.
- Statuses come back as `ItemStatus` / `RoundStatus` through column converters (a dictionary
  lookup per value; a re-run reads one status per file).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from sharelift.state.interface import StateError
from sharelift.state.records import (
    OUTCOME_STATUSES,
    ItemRecord,
    ItemStatus,
    JobRecord,
    KnownItem,
    RoundCount,
    RoundRecord,
    RoundStatus,
    TargetKnown,
    UploadSessionRecord,
    parent_of,
    utcnow,
)
from sharelift.state.schema import MIGRATIONS

_ITEM_STATUS_BY_TEXT = {s.value.encode(): s for s in ItemStatus}
_ROUND_STATUS_BY_TEXT = {s.value.encode(): s for s in RoundStatus}
# Converters are registered by name for the whole process; these names are ours alone.
sqlite3.register_converter("sharelift_item_status", _ITEM_STATUS_BY_TEXT.__getitem__)
sqlite3.register_converter("sharelift_round_status", _ROUND_STATUS_BY_TEXT.__getitem__)
_ITEM_STATUS = 'status AS "status [sharelift_item_status]"'
_ROUND_STATUS = 'status AS "status [sharelift_round_status]"'

_ITEM_COLUMNS = (
    "id, job_id, path, parent, kind, target_path, size, mtime_ns, quick_xor, item_id, etag, "
    f"{_ITEM_STATUS}, error_code, error_message, attempts, round_id, seen_round, started_at, "
    "ended_at"
)
_ROUND_COLUMNS = (
    f"id, job_id, number, {_ROUND_STATUS}, started_at, ended_at, heartbeat_at, pid, host, "
    "files_total, bytes_total, files_done, bytes_done, files_skipped, files_failed, throttled"
)
_ITEM_STATUSES = frozenset(ItemStatus)
_FINAL_ROUND_STATUSES = frozenset(RoundStatus) - {RoundStatus.RUNNING}
_TARGET_PAGE = 1000
"""Rows per query of `done_not_at_target` (pages, so the caller may write in between)."""
_PROGRESS_FIELDS = frozenset(
    {
        "files_total",
        "bytes_total",
        "files_done",
        "bytes_done",
        "files_skipped",
        "files_failed",
        "throttled",
    }
)


class SqliteStateStore:
    """A sharelift state store in one SQLite file. Open it with
    `sharelift.state.open_state(path)` (or `SqliteStateStore.open`)."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, commit_every: int, commit_interval: float
    ) -> None:
        self._conn = conn
        self.path = path
        self._commit_every = commit_every
        self._commit_interval = commit_interval
        self._pending = 0
        self._pending_since = 0.0

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

    # --- write grouping ------------------------------------------------------------------------

    def _write(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Run one write inside the current group; returns its rows (for RETURNING)."""
        self._begin()
        rows = self._conn.execute(sql, tuple(params)).fetchall()
        self._written(1)
        return rows

    def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run one write per parameter row, in one call, inside the current group."""
        if not rows:
            return
        self._begin()
        self._conn.executemany(sql, rows)
        self._written(len(rows))

    def _begin(self) -> None:
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")
            self._pending_since = time.monotonic()

    def _written(self, count: int) -> None:
        self._pending += count
        if (
            self._pending >= self._commit_every
            or time.monotonic() - self._pending_since >= self._commit_interval
        ):
            self.flush()

    def flush(self) -> None:
        """Commit every pending write now."""
        if self._conn.in_transaction:
            self._conn.execute("COMMIT")
        self._pending = 0

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

    def start_round(self, job_id: int) -> RoundRecord:
        """Open the next round of a job. A round still marked running is closed as interrupted."""
        now = utcnow()
        self._write(
            "UPDATE rounds SET status = 'interrupted', ended_at = heartbeat_at "
            "WHERE job_id = ? AND status = 'running'",
            (job_id,),
        )
        (number,) = self._conn.execute(
            "SELECT coalesce(max(number), 0) + 1 FROM rounds WHERE job_id = ?", (job_id,)
        ).fetchone()
        ((round_id,),) = self._write(
            "INSERT INTO rounds (job_id, number, status, started_at, heartbeat_at, pid, host) "
            "VALUES (?, ?, 'running', ?, ?, ?, ?) RETURNING id",
            (job_id, number, now, now, os.getpid(), socket.gethostname()),
        )
        self.flush()
        rnd = self.round(int(round_id))
        assert rnd is not None
        return rnd

    def update_round(self, round_id: int, **counters: int) -> None:
        """Refresh a running round's progress counters and heartbeat."""
        unknown = set(counters) - _PROGRESS_FIELDS
        if unknown:
            raise ValueError(f"unknown round counters: {sorted(unknown)}")
        sets = ", ".join(f"{name} = ?" for name in counters)
        sql = f"UPDATE rounds SET heartbeat_at = ?{', ' if sets else ''}{sets} WHERE id = ?"  # noqa: S608 (names checked above)
        self._write(sql, (utcnow(), *counters.values(), round_id))

    def finish_round(self, round_id: int, status: RoundStatus) -> None:
        """Close a round as completed, failed or interrupted."""
        if status not in _FINAL_ROUND_STATUSES:
            raise ValueError(f"not a final round status: {status}")
        now = utcnow()
        self._write(
            "UPDATE rounds SET status = ?, ended_at = ?, heartbeat_at = ? WHERE id = ?",
            (status, now, now, round_id),
        )
        self.flush()

    def round(self, round_id: int) -> RoundRecord | None:
        row = self._conn.execute(
            f"SELECT {_ROUND_COLUMNS} FROM rounds WHERE id = ?",  # noqa: S608
            (round_id,),
        ).fetchone()
        return RoundRecord(*row) if row else None

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

    # --- items ---------------------------------------------------------------------------------

    def item(self, job_id: int, path: bytes) -> ItemRecord | None:
        row = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE job_id = ? AND path = ?",  # noqa: S608
            (job_id, path),
        ).fetchone()
        return ItemRecord(*row) if row else None

    def item_by_row(self, row: int) -> ItemRecord | None:
        found = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?",  # noqa: S608
            (row,),
        ).fetchone()
        return ItemRecord(*found) if found else None

    def children(self, job_id: int, parent: bytes) -> dict[bytes, KnownItem]:
        """Every known item directly inside the folder `parent`, by path: one query per folder."""
        rows = self._conn.execute(
            f"SELECT id, path, {_ITEM_STATUS}, item_id, target_path, size, mtime_ns "  # noqa: S608
            "FROM items WHERE job_id = ? AND parent = ?",
            (job_id, parent),
        ).fetchall()
        make = KnownItem._make
        return {r[1]: make(r) for r in rows}

    def items(self, job_id: int, status: ItemStatus | None = None) -> Iterator[ItemRecord]:
        """Items of a job (optionally of one status), in path order, streamed."""
        if status is None:
            return self._items_where("job_id = ?", (job_id,))
        return self._items_where("job_id = ? AND status = ?", (job_id, status))

    def round_items(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        """Items that a round changed (their `round_id` is its id), in path order, streamed.

        An item the round only saw unchanged is not among them."""
        return self._items_where("job_id = ? AND round_id = ?", (job_id, round_id))

    def _items_where(self, where: str, params: tuple[object, ...]) -> Iterator[ItemRecord]:
        cur = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where} ORDER BY path",  # noqa: S608
            params,
        )
        return map(ItemRecord._make, cur)

    def round_counts(self, job_id: int, round_id: int) -> list[RoundCount]:
        """What a round's walk met, counted in SQL: one `RoundCount` per kind, status,
        changed-or-only-seen and with-or-without a note, over the items the round changed or
        saw. One pass over the job's items; no row is read into Python."""
        rows = self._conn.execute(
            f"SELECT kind, {_ITEM_STATUS}, round_id IS ?, coalesce(error_code, '') != '', "  # noqa: S608
            "count(*), coalesce(sum(size), 0) FROM items "
            # `+job_id`: a plain scan of the table beats a walk of the (job_id, parent) index
            # that would fetch every row by its id.
            "WHERE +job_id = ? AND (seen_round = ? OR round_id = ? OR parent IN "
            "(SELECT parent FROM folders_seen WHERE job_id = ? AND round_id = ?)) "
            "GROUP BY 1, 2, 3, 4",
            (round_id, job_id, round_id, round_id, job_id, round_id),
        ).fetchall()
        return [RoundCount(k, s, bool(c), bool(n), int(i), int(b)) for k, s, c, n, i, b in rows]

    def count_items(self, job_id: int) -> dict[str, int]:
        """How many items of a job are in each status."""
        rows = self._conn.execute(
            "SELECT status, count(*) FROM items WHERE job_id = ? GROUP BY status", (job_id,)
        ).fetchall()
        return {status: n for status, n in rows}

    def upsert_item(
        self,
        job_id: int,
        path: bytes,
        kind: str,
        *,
        status: ItemStatus,
        round_id: int,
        target_path: str | None = None,
        size: int | None = None,
        mtime_ns: int | None = None,
    ) -> int:
        """Create or refresh an item as seen by this round's walk; returns its row id.

        A refresh keeps what the target already has (item id, eTag, hash) so that the planner
        can compare; it only resets the status when the caller says so.
        """
        if status not in _ITEM_STATUSES:
            raise ValueError(f"unknown item status: {status}")
        ((row_id,),) = self._write(
            "INSERT INTO items (job_id, path, parent, kind, target_path, size, mtime_ns, status, "
            "round_id, seen_round) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id, path) DO UPDATE SET kind = excluded.kind, "
            "target_path = excluded.target_path, size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, status = excluded.status, "
            "round_id = excluded.round_id, seen_round = excluded.seen_round "
            "RETURNING id",
            (
                job_id,
                path,
                parent_of(path),
                kind,
                target_path,
                size,
                mtime_ns,
                status,
                round_id,
                round_id,
            ),
        )
        return int(row_id)

    def mark_seen(self, rows: Iterable[int], round_id: int) -> None:
        """Note that this round's walk saw these unchanged items (for --mirror deletions)."""
        self._write_many(
            "UPDATE items SET seen_round = ? WHERE id = ?", [(round_id, r) for r in rows]
        )

    def mark_folder_seen(self, job_id: int, parent: bytes, round_id: int) -> None:
        """Note that this round's walk saw every item the store knows directly inside the
        folder `parent`, unchanged: `mark_seen` for all of them, written once for the folder
        (in `folders_seen`) instead of once per item. Only for a folder none of whose known
        items is missing from the walk; a new item the round adds there is marked by
        `upsert_item` as usual."""
        self._write(
            "INSERT INTO folders_seen (job_id, parent, round_id) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id, parent) DO UPDATE SET round_id = excluded.round_id",
            (job_id, parent, round_id),
        )

    def mark_started(self, row: int, round_id: int) -> None:
        """An attempt on the target begins: counted, so a crash mid-way is visible on resume."""
        self._write(
            "UPDATE items SET attempts = attempts + 1, started_at = ?, round_id = ?, "
            "status = 'pending' WHERE id = ?",
            (utcnow(), round_id, row),
        )

    def record_done(
        self,
        row: int,
        *,
        round_id: int,
        item_id: str,
        etag: str | None,
        quick_xor: str | None,
        size: int | None,
        mtime_ns: int | None,
        note_code: str | None = None,
        note: str | None = None,
    ) -> None:
        """The target holds this item, verified: the only way an item becomes `done`.

        `note_code` / `note` keep a warning with it (renamed by a rule: which rule and why).
        """
        self._write(
            "UPDATE items SET status = 'done', item_id = ?, etag = ?, quick_xor = ?, size = ?, "
            "mtime_ns = ?, error_code = ?, error_message = ?, round_id = ?, ended_at = ? "
            "WHERE id = ?",
            (item_id, etag, quick_xor, size, mtime_ns, note_code, note, round_id, utcnow(), row),
        )

    def record_outcome(
        self, row: int, *, round_id: int, status: ItemStatus, code: str, message: str
    ) -> None:
        """The item failed, or was skipped or blocked by a rule; the message says why."""
        if status not in OUTCOME_STATUSES:
            raise ValueError(f"not an outcome status: {status}")
        self._write(
            "UPDATE items SET status = ?, error_code = ?, error_message = ?, round_id = ?, "
            "ended_at = ? WHERE id = ?",
            (status, code, message, round_id, utcnow(), row),
        )

    def unseen_since(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        """Items the given round's walk did not see: deleted at the source (for --mirror)."""
        cur = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE job_id = ? "  # noqa: S608
            "AND (seen_round IS NULL OR seen_round < ?) AND status != 'deleted' "
            "AND parent NOT IN (SELECT parent FROM folders_seen WHERE job_id = ? AND round_id = ?) "
            "ORDER BY path",
            (job_id, round_id, job_id, round_id),
        )
        make = ItemRecord._make
        for row in cur:
            yield make(row)

    # --- reconciling with the target -----------------------------------------------------------

    def done_at_target(self, job_id: int, item_ids: Sequence[str]) -> list[TargetKnown]:
        """The job's done items among these target ids: one query (index items_by_target_id);
        SQLite takes at most 32,766 parameters, so very long lists go in parts."""
        found: list[TargetKnown] = []
        for start in range(0, len(item_ids), 30_000):
            part = item_ids[start : start + 30_000]
            marks = ", ".join("?" * len(part))
            found += map(
                TargetKnown._make,
                self._conn.execute(
                    "SELECT id, item_id, kind, quick_xor FROM items "  # noqa: S608 (only marks)
                    f"WHERE job_id = ? AND item_id IN ({marks}) AND status = 'done'",
                    (job_id, *part),
                ),
            )
        return found

    def mark_at_target(self, rows: Iterable[int], round_id: int) -> None:
        self._write_many(
            "UPDATE items SET target_seen_round = ? WHERE id = ?", [(round_id, r) for r in rows]
        )

    def done_not_at_target(self, job_id: int, round_id: int) -> Iterator[TargetKnown]:
        """Read a page at a time, in row order from after the last row of the page before:
        a page is read whole before the caller sees it, so the caller's writes in between
        cannot disturb the reading."""
        after = 0
        while True:
            page = self._conn.execute(
                "SELECT id, item_id, kind, quick_xor FROM items WHERE job_id = ? "
                "AND status = 'done' AND item_id IS NOT NULL AND id > ? "
                "AND target_seen_round IS NOT ? ORDER BY id LIMIT ?",
                (job_id, after, round_id, _TARGET_PAGE),
            ).fetchall()
            for row in page:
                yield TargetKnown._make(row)
            if len(page) < _TARGET_PAGE:
                return
            after = page[-1][0]

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
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, utcnow())
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
