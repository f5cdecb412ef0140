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

The items table is read by `PgItemRows` (`postgres_items.py`); the rest is kept by the parts
written once for both backends: item writes (`item_writes.py`), jobs, rounds and upload
sessions (`job_rows.py`), the Migration API packages (`package_rows.py`), files moved aside and
old versions to remove (`target_rows.py`), units and workers (`unit_rows.py`). Here: opening
and closing the connection, and what PostgreSQL does its own way (samples read a page at a
time, the last rounds by `DISTINCT ON`); `check` has no integrity pragma to run: the database
keeps its own pages sound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Self

import psycopg

from sharelift.state.job_rows import ROUND_COLUMNS, SAMPLE_COLUMNS, JobRows, round_record
from sharelift.state.package_rows import PackageRows
from sharelift.state.postgres_db import connect
from sharelift.state.postgres_items import PgItemRows
from sharelift.state.records import RoundRecord, RoundSample
from sharelift.state.target_rows import TargetWork
from sharelift.state.unit_rows import UnitRows
from sharelift.urls import hide_password

_SAMPLE_PAGE = 1000
"""Samples per query of `samples_since`."""
_LAST_ID = 2**63 - 1
"""The largest row id (BIGINT)."""


class PostgresStateStore(PgItemRows, JobRows, PackageRows, TargetWork, UnitRows):
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

    # --- what differs from SQLite --------------------------------------------------------------

    def round_samples(self, round_id: int) -> Iterator[RoundSample]:
        rows = self._read(
            f"SELECT {SAMPLE_COLUMNS} FROM round_samples WHERE round_id = ? ORDER BY at",  # noqa: S608
            (round_id,),
        )
        return (RoundSample(*row) for row in rows)

    def samples_since(self, after: str) -> Iterator[tuple[int, RoundSample]]:
        """A page at a time, through the index on the instant; ties between rounds by round
        id."""
        last: tuple[str, int] = (after, _LAST_ID)  # after every round's samples at `after`
        while True:
            page = self._read(
                f"SELECT round_id, {SAMPLE_COLUMNS} FROM round_samples "  # noqa: S608
                "WHERE at >= ? AND (at, round_id) > (?, ?) ORDER BY at, round_id LIMIT ?",
                (last[0], *last, _SAMPLE_PAGE),
            )
            for row in page:
                yield int(row[0]), RoundSample(*row[1:])
            if len(page) < _SAMPLE_PAGE:
                return
            last = (page[-1][1], int(page[-1][0]))

    def latest_rounds(self) -> list[RoundRecord]:
        rows = self._read(
            f"SELECT DISTINCT ON (job_id) {ROUND_COLUMNS} FROM rounds "  # noqa: S608
            "ORDER BY job_id, number DESC"
        )
        return [round_record(r) for r in rows]
