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

The items table is read by `ItemRows` (`sqlite_items.py`) and written by `ItemWrites`
(`item_writes.py`); jobs, rounds and upload sessions are kept by `JobRows` (`job_rows.py`), the
Migration API packages by `PackageRows` (`package_rows.py`), files moved aside and old versions
to remove by `TargetWork` (`target_rows.py`), units of work and workers by `UnitRows`
(`unit_rows.py`): all but `ItemRows` are shared with PostgreSQL. Here: opening and closing the
file, and what SQLite does its own way (streams of samples, the last rounds, the integrity
pragma).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from sharelift.state.interface import StateError
from sharelift.state.job_rows import ROUND_COLUMNS, SAMPLE_COLUMNS, JobRows, round_record
from sharelift.state.package_rows import PackageRows
from sharelift.state.records import RoundRecord, RoundSample, utcnow
from sharelift.state.schema import MIGRATIONS, SQLITE, statements
from sharelift.state.sqlite_items import ItemRows
from sharelift.state.target_rows import TargetWork
from sharelift.state.unit_rows import UnitRows


class SqliteStateStore(ItemRows, JobRows, PackageRows, TargetWork, UnitRows):
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

    # --- what differs from PostgreSQL ----------------------------------------------------------

    def round_samples(self, round_id: int) -> Iterator[RoundSample]:
        cur = self._conn.execute(
            f"SELECT {SAMPLE_COLUMNS} FROM round_samples WHERE round_id = ? ORDER BY at",  # noqa: S608
            (round_id,),
        )
        return (RoundSample(*row) for row in cur)

    def samples_since(self, after: str) -> Iterator[tuple[int, RoundSample]]:
        """Streamed from the cursor, through the index on the instant."""
        cur = self._conn.execute(
            f"SELECT round_id, {SAMPLE_COLUMNS} FROM round_samples "  # noqa: S608
            "WHERE at > ? ORDER BY at",
            (after,),
        )
        return ((row[0], RoundSample(*row[1:])) for row in cur)

    def latest_rounds(self) -> list[RoundRecord]:
        """One query through the (job_id, number) index."""
        rows = self._read(
            f"SELECT {ROUND_COLUMNS} FROM rounds r WHERE number = "  # noqa: S608
            "(SELECT max(number) FROM rounds WHERE job_id = r.job_id) ORDER BY job_id"
        )
        return [round_record(r) for r in rows]

    def check(self) -> list[str]:
        """SQLite's integrity check first, then the checks of both backends."""
        (verdict,) = self._conn.execute("PRAGMA integrity_check").fetchone()
        problems = [] if verdict == "ok" else [f"sqlite integrity: {verdict}"]
        return problems + super().check()


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
