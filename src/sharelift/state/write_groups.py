"""Grouped writes, counted the same way for both backends: a group is committed after
`commit_every` writes or `commit_interval` seconds, and on `flush()`, so that a run of 100,000
small files does not pay for 100,000 commits.

`WriteGroups` keeps the count and the clock; a backend's connection class
(`sqlite_db.GroupedWrites`, `postgres_db.PgGroupedWrites`) subclasses it with the dialect's
`_write` (one write inside the current group; its rows, for RETURNING), `_write_many` (one
write per parameter row, in one call), `_begin` (opens a group unless one is open, and sets
`_pending_since`) and `flush` (commits every pending write now, and resets `_pending`). Those
stay one call deep: a per-item write goes through no more than them.
"""

from __future__ import annotations

import time
from typing import Any

from sharelift.state.portable import PortableSql


class WriteGroups(PortableSql):
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
