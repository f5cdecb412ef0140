"""Grouped writes, counted the same way for both backends: a group is committed after
`commit_every` writes or `commit_interval` seconds, and on `flush()`, so that a run of 100,000
small files does not pay for 100,000 commits.

`WriteGroups` keeps the count and the clock, and documents the methods a backend's connection
class (`sqlite_db.GroupedWrites`, `postgres_db.PgGroupedWrites`) gives it: how a statement is
run, and a transaction opened and committed, is the dialect's (so a per-item write stays one
call deep).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any


class WriteGroups:
    """The write group of one connection: how many writes wait, and since when."""

    def __init__(self, conn: Any, *, commit_every: int, commit_interval: float) -> None:
        self._conn = conn
        self._commit_every = commit_every
        self._commit_interval = commit_interval
        self._pending = 0
        self._pending_since = 0.0

    def _written(self, count: int) -> None:
        """`count` more writes joined the group: commit it when it is full or old enough."""
        self._pending += count
        if (
            self._pending >= self._commit_every
            or time.monotonic() - self._pending_since >= self._commit_interval
        ):
            self.flush()

    def _write(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Run one write inside the current group; returns its rows (for RETURNING)."""
        raise NotImplementedError

    def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run one write per parameter row, in one call, inside the current group."""
        raise NotImplementedError

    def _begin(self) -> None:
        """Open a group unless one is open, and note when (`_pending_since`)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Commit every pending write now."""
        raise NotImplementedError
