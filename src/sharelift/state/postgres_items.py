"""The items of a PostgreSQL state store: reading them, and reconciling them with the target.

`PgItemRows` is the part of `PostgresStateStore` that keeps the `items` table (and the
`folders_seen` marks); its methods keep the contract of `sharelift.state.StateStore`, as the
SQLite backend's `ItemRows` does. Its writes are `ItemWrites`' (`item_writes.py`, the same
for both backends); here are the reads and the counts, in PostgreSQL's words. Streams
(`items`, `round_items`, `unseen_since`) are read a page at a time, in path order from after
the last path of the page before, so that memory stays bounded however many items a job has,
and the caller may write in between.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sharelift.state.item_writes import HISTORY_COLUMNS, TARGET_KNOWN, ItemWrites, item_columns
from sharelift.state.postgres_db import PgGroupedWrites
from sharelift.state.records import (
    ItemRecord,
    ItemStatus,
    KnownItem,
    OutcomeCount,
    RoundCount,
    TargetKnown,
)

_ITEM_COLUMNS = item_columns("status")
_COUNTS = (
    "SELECT kind, status, round_id IS NOT DISTINCT FROM ?, coalesce(error_code, '') != '', "
    "started_at IS NOT NULL, count(*), coalesce(sum(size), 0) FROM items "
    "WHERE job_id = ? AND (seen_round = ? OR round_id = ? OR parent IN "
    "(SELECT parent FROM folders_seen WHERE job_id = ? AND round_id = ?)) "
    "GROUP BY 1, 2, 3, 4, 5"
)
"""What a round's walk met, counted (`round_counts`), as the SQLite backend counts it."""
_STATUS = {s.value: s for s in ItemStatus}
_PAGE = 1000
"""Rows per query of a stream."""


def _item(row: Sequence[Any]) -> ItemRecord:
    values = list(row)
    values[11] = _STATUS[values[11]]
    return ItemRecord._make(values)


class PgItemRows(PgGroupedWrites, ItemWrites):
    """The `items` table of a state store (see the module docstring)."""

    _KEEP_COUNTS = (
        "INSERT INTO round_totals (round_id, kind, status, changed, noted, started, items, "  # noqa: S608 (a constant)
        f"size) SELECT ?, kind, status, c::int, n::int, t::int, i, b FROM ({_COUNTS}) "
        "AS counts (kind, status, c, n, t, i, b)"
    )

    def item(self, job_id: int, path: bytes) -> ItemRecord | None:
        rows = self._read(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE job_id = ? AND path = ?",  # noqa: S608
            (job_id, path),
        )
        return _item(rows[0]) if rows else None

    def item_by_row(self, row: int) -> ItemRecord | None:
        rows = self._read(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?", (row,))  # noqa: S608
        return _item(rows[0]) if rows else None

    def children(self, job_id: int, parent: bytes) -> dict[bytes, KnownItem]:
        rows = self._read(
            "SELECT id, path, status, item_id, target_path, size, mtime_ns "
            "FROM items WHERE job_id = ? AND parent = ?",
            (job_id, parent),
        )
        return {r[1]: KnownItem(r[0], r[1], _STATUS[r[2]], *r[3:]) for r in rows}

    def items(self, job_id: int, status: ItemStatus | None = None) -> Iterator[ItemRecord]:
        if status is None:
            return self._paged(job_id, "TRUE", ())
        return self._paged(job_id, "status = ?", (str(status),))

    def noted_items(self, job_id: int, status: ItemStatus) -> Iterator[ItemRecord]:
        return self._paged(job_id, "status = ? AND coalesce(error_code, '') != ''", (str(status),))

    def round_items(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        # Those whose round_id is its id, and those a later round changed since (kept in
        # `item_history` by the trigger), a page at a time by path.
        after: bytes | None = None
        while True:
            page = self._read(
                f"SELECT * FROM (SELECT {_ITEM_COLUMNS} FROM items "  # noqa: S608
                "WHERE job_id = ? AND round_id = ? "
                f"UNION ALL SELECT {HISTORY_COLUMNS} FROM item_history h "
                "JOIN items i ON i.id = h.item_row WHERE h.round_id = ? AND i.job_id = ?) AS r "
                "WHERE (?::bytea IS NULL OR path > ?::bytea) ORDER BY path LIMIT ?",
                (job_id, round_id, round_id, job_id, after, after, _PAGE),
            )
            yield from map(_item, page)
            if len(page) < _PAGE:
                return
            after = page[-1][2]

    def unseen_since(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        return self._paged(
            job_id,
            "(seen_round IS NULL OR seen_round < ?) AND status != 'deleted' AND parent NOT IN "
            "(SELECT parent FROM folders_seen WHERE job_id = ? AND round_id = ?)",
            (round_id, job_id, round_id),
        )

    def _paged(self, job_id: int, where: str, params: tuple[Any, ...]) -> Iterator[ItemRecord]:
        after: bytes | None = None
        while True:
            page = self._read(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE job_id = ? AND {where} "  # noqa: S608
                "AND (?::bytea IS NULL OR path > ?::bytea) ORDER BY path LIMIT ?",
                (job_id, *params, after, after, _PAGE),
            )
            yield from map(_item, page)
            if len(page) < _PAGE:
                return
            after = page[-1][2]

    def round_counts(self, job_id: int, round_id: int) -> list[RoundCount]:
        """As the SQLite backend's: a closed round's counts as kept when it closed, a running
        round's counted now, in SQL."""
        counted = self._read("SELECT counted FROM rounds WHERE id = ?", (round_id,))
        if counted and counted[0][0]:
            rows = self._read(
                "SELECT kind, status, changed, noted, started, items, size "
                "FROM round_totals WHERE round_id = ?",
                (round_id,),
            )
        else:
            rows = self._read(_COUNTS, (round_id, job_id, round_id, round_id, job_id, round_id))
        return [
            RoundCount(k, _STATUS[s], bool(c), bool(n), int(i), int(b), bool(t))
            for k, s, c, n, t, i, b in rows
        ]

    def outcome_counts(self, job_id: int) -> list[OutcomeCount]:
        """As the SQLite backend's; each group's example (its first path, with its message)
        comes from a second pass (`DISTINCT ON`: PostgreSQL has no `min` of bytes)."""
        groups = self._read(
            "SELECT kind, status, coalesce(error_code, ''), count(*), coalesce(sum(size), 0), "
            "max(round_id) FROM items WHERE job_id = ? GROUP BY 1, 2, 3 ORDER BY 2, 3, 1",
            (job_id,),
        )
        examples = {
            (kind, status, code): (path, message)
            for kind, status, code, path, message in self._read(
                "SELECT DISTINCT ON (kind, status, coalesce(error_code, '')) kind, status, "
                "coalesce(error_code, ''), path, coalesce(error_message, '') FROM items "
                "WHERE job_id = ? ORDER BY kind, status, coalesce(error_code, ''), path",
                (job_id,),
            )
        }
        numbers = dict(self._read("SELECT id, number FROM rounds WHERE job_id = ?", (job_id,)))
        found = []
        for kind, status, code, items, size, last in groups:
            path, message = examples[(kind, status, code)]
            found.append(
                OutcomeCount(
                    kind, _STATUS[status], code, int(items), int(size), path, message,
                    numbers.get(last),
                )
            )  # fmt: skip
        return found

    # --- reconciling with the target -----------------------------------------------------------

    def done_at_target(self, job_id: int, item_ids: Sequence[str]) -> list[TargetKnown]:
        rows = self._read(
            f"SELECT {TARGET_KNOWN} FROM items "  # noqa: S608 (constants and marks)
            "WHERE job_id = ? AND item_id = ANY(?) AND status = 'done'",
            (job_id, list(item_ids)),
        )
        return [TargetKnown._make(r) for r in rows]

    def done_not_at_target(self, job_id: int, round_id: int) -> Iterator[TargetKnown]:
        after = 0
        while True:
            page = self._read(
                f"SELECT {TARGET_KNOWN} FROM items WHERE job_id = ? "  # noqa: S608
                "AND status = 'done' AND item_id IS NOT NULL AND id > ? "
                "AND target_seen_round IS DISTINCT FROM ? ORDER BY id LIMIT ?",
                (job_id, after, round_id, _PAGE),
            )
            for row in page:
                yield TargetKnown._make(row)
            if len(page) < _PAGE:
                return
            after = page[-1][0]
