"""The base of the parts of a state store written once for both backends (`unit_rows.py`,
`package_rows.py`): SQL with `?` marks, run through the backend's connection.

A backend's store class mixes such a part in after the class that holds its connection and
groups its writes (`sqlite_db.GroupedWrites`, `postgres_db.PgGroupedWrites`), whose `_write`,
`_write_many`, `_begin` and `flush` are the ones used. SQLite's defaults are here; PostgreSQL's
connection class replaces `_q` (its `%s` marks), `_NOW` (its clock), `_in` and `_read`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


class PortableSql:
    """What a part written for both backends needs of its store (see the module docstring)."""

    _NOW = "((julianday('now') - 2440587.5) * 86400.0)"
    """The store's clock in epoch seconds, as SQL (SQLite's)."""
    _conn: Any

    def _q(self, sql: str) -> str:
        """`sql` with the backend's parameter marks (SQLite's are `?` already)."""
        return sql

    def _in(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """SQL that holds when `column` is one of `values`, and its parameters."""
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """The rows of one query."""
        return list(self._conn.execute(self._q(sql), tuple(params)).fetchall())

    def _write(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError
