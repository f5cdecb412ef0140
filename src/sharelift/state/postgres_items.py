"""The items of a PostgreSQL state store: reading, writing, and reconciling with the target.

`PgItemRows` is the part of `PostgresStateStore` that keeps the `items` table (and the
`folders_seen` marks); its methods keep the contract of `sharelift.state.StateStore`, as the
SQLite backend's `ItemRows` does, with the same statements where the two dialects agree.
Streams (`items`, `round_items`, `unseen_since`) are read a page at a time, in path order from
after the last path of the page before, so that memory stays bounded however many items a job
has, and the caller may write in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sharelift.state.postgres_db import PgGroupedWrites
from sharelift.state.records import (
    OUTCOME_STATUSES,
    ItemRecord,
    ItemStatus,
    KnownItem,
    OutcomeCount,
    RoundCount,
    TargetKnown,
    parent_of,
    utcnow,
)

_ITEM_COLUMNS = (
    "id, job_id, path, parent, kind, target_path, size, mtime_ns, quick_xor, item_id, etag, "
    "status, error_code, error_message, attempts, round_id, seen_round, started_at, ended_at, "
    "stored_size, stored_hash, verified_by"
)
_TARGET_KNOWN = "id, item_id, kind, coalesce(stored_hash, quick_xor)"
"""An item as `TargetKnown`: the hash the target should report is the stored version's."""
_HISTORY_COLUMNS = (
    "i.id, i.job_id, i.path, i.parent, h.kind, h.target_path, h.size, h.mtime_ns, h.quick_xor, "
    "h.item_id, h.etag, h.status, h.error_code, h.error_message, h.attempts, h.round_id, "
    "h.round_id, h.started_at, h.ended_at, h.stored_size, h.stored_hash, h.verified_by"
)
"""An item as an earlier round left it (`item_history`), in `_ITEM_COLUMNS`' order."""
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


class PgItemRows(PgGroupedWrites):
    """The `items` table of a state store (see the module docstring)."""

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
        """As the round left them: the items whose round_id is its id, and those a later round
        changed since (kept in `item_history` by the trigger), a page at a time by path."""
        after: bytes | None = None
        while True:
            page = self._read(
                f"SELECT * FROM (SELECT {_ITEM_COLUMNS} FROM items "  # noqa: S608
                "WHERE job_id = ? AND round_id = ? "
                f"UNION ALL SELECT {_HISTORY_COLUMNS} FROM item_history h "
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

    def keep_round_counts(self, job_id: int, round_id: int) -> None:
        """Count what the round's walk met, now that it closes, into `round_totals`."""
        self._write("DELETE FROM round_totals WHERE round_id = ?", (round_id,))
        self._write(
            "INSERT INTO round_totals (round_id, kind, status, changed, noted, started, items, "  # noqa: S608 (a constant)
            f"size) SELECT ?, kind, status, c::int, n::int, t::int, i, b FROM ({_COUNTS}) "
            "AS counts (kind, status, c, n, t, i, b)",
            (round_id, round_id, job_id, round_id, round_id, job_id, round_id),
        )
        self._write("UPDATE rounds SET counted = 1 WHERE id = ?", (round_id,))

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

    def count_items(self, job_id: int) -> dict[str, int]:
        rows = self._read(
            "SELECT status, count(*) FROM items WHERE job_id = ? GROUP BY status", (job_id,)
        )
        return {status: int(n) for status, n in rows}

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
        if status not in _STATUS:
            raise ValueError(f"unknown item status: {status}")
        ((row_id,),) = self._write(
            "INSERT INTO items (job_id, path, parent, kind, target_path, size, mtime_ns, status, "
            "round_id, seen_round) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (job_id, path) DO UPDATE SET kind = excluded.kind, "
            "target_path = excluded.target_path, size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, status = excluded.status, "
            "round_id = excluded.round_id, seen_round = excluded.seen_round, "
            "started_at = NULL, ended_at = NULL "
            "RETURNING id",
            (
                job_id, path, parent_of(path), kind, target_path, size, mtime_ns, str(status),
                round_id, round_id,
            ),
        )  # fmt: skip
        return int(row_id)

    def mark_seen(self, rows: Iterable[int], round_id: int) -> None:
        self._write_many(
            "UPDATE items SET seen_round = ? WHERE id = ?", [(round_id, r) for r in rows]
        )

    def mark_folder_seen(self, job_id: int, parent: bytes, round_id: int) -> None:
        self._write(
            "INSERT INTO folders_seen (job_id, parent, round_id) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id, parent) DO UPDATE SET round_id = excluded.round_id",
            (job_id, parent, round_id),
        )

    def mark_started(self, row: int, round_id: int) -> None:
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
        verified_by: str | None = None,
        stored_size: int | None = None,
        stored_hash: str | None = None,
    ) -> None:
        self._write(
            "UPDATE items SET status = 'done', item_id = ?, etag = ?, quick_xor = ?, size = ?, "
            "mtime_ns = ?, error_code = ?, error_message = ?, round_id = ?, ended_at = ?, "
            "stored_size = ?, stored_hash = ?, verified_by = ? WHERE id = ?",
            (
                item_id,
                etag,
                quick_xor,
                size,
                mtime_ns,
                note_code,
                note,
                round_id,
                utcnow(),
                size if stored_size is None else stored_size,
                quick_xor if stored_hash is None else stored_hash,
                None if verified_by is None else str(verified_by),
                row,
            ),
        )

    def note_target_item(self, row: int, item_id: str) -> None:
        self._write("UPDATE items SET item_id = ? WHERE id = ?", (item_id, row))
        self.flush()

    def record_outcome(
        self, row: int, *, round_id: int, status: ItemStatus, code: str, message: str
    ) -> None:
        if status not in OUTCOME_STATUSES:
            raise ValueError(f"not an outcome status: {status}")
        self._write(
            "UPDATE items SET status = ?, error_code = ?, error_message = ?, round_id = ?, "
            "ended_at = ? WHERE id = ?",
            (str(status), code, message, round_id, utcnow(), row),
        )

    # --- reconciling with the target -----------------------------------------------------------

    def done_at_target(self, job_id: int, item_ids: Sequence[str]) -> list[TargetKnown]:
        rows = self._read(
            f"SELECT {_TARGET_KNOWN} FROM items "  # noqa: S608 (constants and marks)
            "WHERE job_id = ? AND item_id = ANY(?) AND status = 'done'",
            (job_id, list(item_ids)),
        )
        return [TargetKnown._make(r) for r in rows]

    def mark_at_target(self, rows: Iterable[int], round_id: int) -> None:
        self._write_many(
            "UPDATE items SET target_seen_round = ? WHERE id = ?", [(round_id, r) for r in rows]
        )

    def done_not_at_target(self, job_id: int, round_id: int) -> Iterator[TargetKnown]:
        after = 0
        while True:
            page = self._read(
                f"SELECT {_TARGET_KNOWN} FROM items WHERE job_id = ? "  # noqa: S608
                "AND status = 'done' AND item_id IS NOT NULL AND id > ? "
                "AND target_seen_round IS DISTINCT FROM ? ORDER BY id LIMIT ?",
                (job_id, after, round_id, _PAGE),
            )
            for row in page:
                yield TargetKnown._make(row)
            if len(page) < _PAGE:
                return
            after = page[-1][0]
