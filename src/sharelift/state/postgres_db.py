"""The PostgreSQL connection of a state store: opening it, the schema, grouped writes.

The connection is in autocommit mode; a write opens a transaction (`BEGIN`) that later writes
join, committed as `write_groups.py` counts (after `commit_every` writes or `commit_interval`
seconds, and on `flush()`): a read outside a write group holds no transaction open.
Statements are written with `?` marks, as the SQLite backend's are, and sent with psycopg's
`%s` (`q`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq

from sharelift.state.interface import StateError
from sharelift.state.records import utcnow
from sharelift.state.schema import MIGRATIONS, POSTGRESQL, statements
from sharelift.state.write_groups import WriteGroups
from sharelift.urls import hide_password

NOW = "(EXTRACT(EPOCH FROM clock_timestamp())::float8)"
"""The store's clock in epoch seconds: the server's, whichever worker asks."""
_MIGRATION_LOCK = 0x5348524C  # "SHRL": one process at a time brings the schema up to date


@lru_cache(maxsize=512)
def q(sql: str) -> str:
    """`sql` with psycopg's `%s` marks for `?` (no statement here holds a `?` or `%` else)."""
    return sql.replace("?", "%s")


def connect(url: str, *, readonly: bool) -> psycopg.Connection[Any]:
    """A connection to the database at `url`, its schema brought up to date unless
    `readonly` (then it must hold a state store already). Raises StateError naming the
    database without its password."""
    shown = hide_password(url)
    try:
        # Keepalives: a database behind a dead link is noticed in half a minute, not in the
        # quarter of an hour TCP takes (a worker's heartbeat must fail, not hang).
        conn = psycopg.connect(
            url,
            autocommit=True,
            application_name="sharelift",
            connect_timeout=10,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
    except psycopg.Error as exc:
        raise StateError(f"cannot open state store {shown}: {_first_line(exc, url)}") from None
    try:
        if readonly:
            conn.execute("SET default_transaction_read_only = on")
            if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,):
                raise StateError(f"no state store at {shown}")
            _check_known(conn)
        else:
            _migrate(conn)
    except psycopg.Error as exc:
        conn.close()
        raise StateError(
            f"{shown} is not a usable sharelift state store: {_first_line(exc, url)}"
        ) from None
    except StateError:
        conn.close()
        raise
    return conn


def _first_line(exc: BaseException, url: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace(url, hide_password(url))


def _check_known(conn: psycopg.Connection[Any]) -> set[str]:
    applied = {name for (name,) in conn.execute("SELECT name FROM schema_migrations")}
    if unknown := applied - {name for name, _ in MIGRATIONS}:
        raise StateError(
            f"the state store was written by a newer sharelift (unknown migrations "
            f"{sorted(unknown)})"
        )
    return applied


def _migrate(conn: psycopg.Connection[Any]) -> None:
    """Apply the migrations not applied yet, in one transaction, under an advisory lock (so
    that workers starting together apply each once)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
        )
        applied = _check_known(conn)
        for name, sql in MIGRATIONS:
            if name in applied:
                continue
            for statement in statements(sql, POSTGRESQL):
                conn.execute(statement.encode())
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (%s, %s)",
                (name, utcnow()),
            )


class PgGroupedWrites(WriteGroups):
    """A connection in autocommit mode whose writes are grouped in transactions."""

    _NOW = NOW
    _conn: psycopg.Connection[Any]

    def _q(self, sql: str) -> str:
        return q(sql)

    def _in(self, column: str, values: Any) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return self._conn.execute(q(sql), tuple(params)).fetchall()

    def _write(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        self._begin()
        cur = self._conn.execute(q(sql), tuple(params))
        rows = cur.fetchall() if cur.description is not None else []
        self._written(1)
        return rows

    def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        self._begin()
        with self._conn.cursor() as cur:
            cur.executemany(q(sql), rows)
        self._written(len(rows))

    def _begin(self) -> None:
        if self._conn.info.transaction_status == pq.TransactionStatus.IDLE:
            self._conn.execute("BEGIN")
            self._pending_since = time.monotonic()

    def flush(self) -> None:
        if self._conn.info.transaction_status != pq.TransactionStatus.IDLE:
            self._conn.execute("COMMIT")
        self._pending = 0
