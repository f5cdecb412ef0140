"""The emulator's SQLite database: one connection, one lock, transactions and small queries.

Metadata lives in `data_dir/emulator.db` (WAL). One connection guarded by one re-entrant lock
serialises every read-modify-write, so concurrent requests (many uploads into one folder) can
neither create two items with one name nor lose an item. A role object that must decide and
write atomically holds `db.lock` across both (it is re-entrant, and `tx()` takes it too).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sharelift.emulator.store.schema import migrate
from sharelift.errors import EmulatorError


class Database:
    """The connection and its lock. Use `Database.open(path)`; every method is thread-safe."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.lock = threading.RLock()

    @classmethod
    def open(cls, path: Path) -> Database:
        """Open (or create) the database at `path` and bring its schema up to date.

        Raises EmulatorError naming the file when it cannot be used."""
        try:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise EmulatorError(
                f"cannot use {path.parent} as the emulator's data folder: {exc}"
            ) from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise EmulatorError(f"{path} is not an emulator database: {exc}") from exc
        return cls(conn)

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on an exception), holding
        the lock; yields the connection to write with. Transactions do not nest."""
        with self.lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        with self.lock:
            row = self._conn.execute(sql, args).fetchone()
        return None if row is None else tuple(row)

    def all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a query."""
        with self.lock:
            return [tuple(row) for row in self._conn.execute(sql, args).fetchall()]

    def scalar(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.one(sql, args)
        return None if row is None else row[0]

    def meta(self, key: str) -> str | None:
        """A value of the `meta` table (the store's own settings), or None."""
        value = self.scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
