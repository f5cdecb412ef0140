"""The SQLite connection of a state store: grouped writes, and statuses read back as enums.

Writes are grouped (`write_groups.py`): a group is a `BEGIN IMMEDIATE` transaction, committed
after `commit_every` writes or `commit_interval` seconds, and on `flush()`.
An item's status comes back as an `ItemStatus` through a column converter (a dictionary lookup
per value; a re-run reads one status per file): a query names its status column
`ITEM_STATUS`, and the connection is opened with `PARSE_COLNAMES`. (A round's is converted by
`job_rows.round_record`, as PostgreSQL's is: rounds are few.)
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from sharelift.state.records import ItemStatus
from sharelift.state.write_groups import WriteGroups

_ITEM_STATUS_BY_TEXT = {s.value.encode(): s for s in ItemStatus}
# Converters are registered by name for the whole process; this name is ours alone.
sqlite3.register_converter("sharelift_item_status", _ITEM_STATUS_BY_TEXT.__getitem__)
ITEM_STATUS = 'status AS "status [sharelift_item_status]"'


class GroupedWrites(WriteGroups):
    """A connection (autocommit off: `isolation_level=None`) whose writes are grouped."""

    _conn: sqlite3.Connection

    def _write(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        self._begin()
        rows = self._conn.execute(sql, tuple(params)).fetchall()
        self._written(1)
        return rows

    def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        self._begin()
        self._conn.executemany(sql, rows)
        self._written(len(rows))

    def _begin(self) -> None:
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")
            self._pending_since = time.monotonic()

    def flush(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("COMMIT")
        self._pending = 0
