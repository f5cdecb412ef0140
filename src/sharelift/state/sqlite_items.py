"""The items of a SQLite state store: reading them, and reconciling them with the target.

`ItemRows` is the part of `SqliteStateStore` that keeps the `items` table (and the
`folders_seen` marks); its methods keep the contract of `sharelift.state.StateStore`. Its
writes are `ItemWrites`' (`item_writes.py`, the same for both backends); here are the reads,
streamed from the cursor with statuses converted by the connection (`sqlite_db.py`), and the
counts, in SQLite's words.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sharelift.state.item_writes import HISTORY_COLUMNS, TARGET_KNOWN, ItemWrites, item_columns
from sharelift.state.records import (
    ItemRecord,
    ItemStatus,
    KnownItem,
    OutcomeCount,
    RoundCount,
    TargetKnown,
)
from sharelift.state.sqlite_db import ITEM_STATUS, GroupedWrites

_ITEM_COLUMNS = item_columns(ITEM_STATUS)
_COUNTS = (
    "SELECT kind, {status}, round_id IS ?, coalesce(error_code, '') != '', "
    "started_at IS NOT NULL, count(*), coalesce(sum(size), 0) FROM items "
    # `+job_id`: a plain scan of the table beats a walk of the (job_id, parent) index
    # that would fetch every row by its id.
    "WHERE +job_id = ? AND (seen_round = ? OR round_id = ? OR parent IN "
    "(SELECT parent FROM folders_seen WHERE job_id = ? AND round_id = ?)) "
    "GROUP BY 1, 2, 3, 4, 5"
)
"""What a round's walk met, counted (`round_counts`); `{status}` is the status column."""
_TARGET_PAGE = 1000
"""Rows per query of `done_not_at_target` (pages, so the caller may write in between)."""


class ItemRows(GroupedWrites, ItemWrites):
    """The `items` table of a state store (see the module docstring)."""

    _KEEP_COUNTS = (
        "INSERT INTO round_totals (round_id, kind, status, changed, noted, started, items, "  # noqa: S608 (a constant)
        f"size) SELECT ?, * FROM ({_COUNTS.format(status='status')})"
    )

    def item(self, job_id: int, path: bytes) -> ItemRecord | None:
        row = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE job_id = ? AND path = ?",  # noqa: S608
            (job_id, path),
        ).fetchone()
        return ItemRecord(*row) if row else None

    def item_by_row(self, row: int) -> ItemRecord | None:
        found = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?",  # noqa: S608
            (row,),
        ).fetchone()
        return ItemRecord(*found) if found else None

    def children(self, job_id: int, parent: bytes) -> dict[bytes, KnownItem]:
        rows = self._conn.execute(
            f"SELECT id, path, {ITEM_STATUS}, item_id, target_path, size, mtime_ns "  # noqa: S608
            "FROM items WHERE job_id = ? AND parent = ?",
            (job_id, parent),
        ).fetchall()
        make = KnownItem._make
        return {r[1]: make(r) for r in rows}

    def items(self, job_id: int, status: ItemStatus | None = None) -> Iterator[ItemRecord]:
        if status is None:
            return self._items_where("job_id = ?", (job_id,))
        return self._items_where("job_id = ? AND status = ?", (job_id, status))

    def round_items(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        # Those whose `round_id` is its id, and those a later round changed since (their
        # outcome in this round kept in `item_history` by a trigger).
        cur = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE job_id = ? AND round_id = ? "  # noqa: S608
            f"UNION ALL SELECT {HISTORY_COLUMNS} FROM item_history h "
            "JOIN items i ON i.id = h.item_row WHERE h.round_id = ? AND i.job_id = ? "
            "ORDER BY path",
            (job_id, round_id, round_id, job_id),
        )
        return map(ItemRecord._make, cur)

    def _items_where(self, where: str, params: tuple[object, ...]) -> Iterator[ItemRecord]:
        cur = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE {where} ORDER BY path",  # noqa: S608
            params,
        )
        return map(ItemRecord._make, cur)

    def noted_items(self, job_id: int, status: ItemStatus) -> Iterator[ItemRecord]:
        return self._items_where(
            "job_id = ? AND status = ? AND coalesce(error_code, '') != ''", (job_id, status)
        )

    def round_counts(self, job_id: int, round_id: int) -> list[RoundCount]:
        """A closed round's counts were kept when it closed (`keep_round_counts`: later rounds
        change what its items say); a running round's are counted now, in SQL, in one pass
        over the job's items, no row read into Python."""
        (counted,) = self._conn.execute(
            "SELECT counted FROM rounds WHERE id = ?", (round_id,)
        ).fetchone() or (0,)
        if counted:
            rows = self._conn.execute(
                f"SELECT kind, {ITEM_STATUS}, changed, noted, started, items, size "  # noqa: S608
                "FROM round_totals WHERE round_id = ?",
                (round_id,),
            ).fetchall()
        else:
            rows = self._conn.execute(
                _COUNTS.format(status=ITEM_STATUS),
                (round_id, job_id, round_id, round_id, job_id, round_id),
            ).fetchall()
        return [
            RoundCount(k, s, bool(c), bool(n), int(i), int(b), bool(t))
            for k, s, c, n, t, i, b in rows
        ]

    def outcome_counts(self, job_id: int) -> list[OutcomeCount]:
        """The job's items now, by kind, status and code: one pass over them in SQL, then the
        message of each group's example (its first path) by the (job_id, path) key."""
        groups = self._conn.execute(
            f"SELECT kind, {ITEM_STATUS}, coalesce(error_code, ''), count(*), "  # noqa: S608
            "coalesce(sum(size), 0), min(path), max(round_id) FROM items WHERE job_id = ? "
            "GROUP BY 1, 2, 3 ORDER BY 2, 3, 1",
            (job_id,),
        ).fetchall()
        numbers = dict(
            self._conn.execute("SELECT id, number FROM rounds WHERE job_id = ?", (job_id,))
        )
        found = []
        for kind, status, code, items, size, path, last in groups:
            (message,) = self._conn.execute(
                "SELECT coalesce(error_message, '') FROM items WHERE job_id = ? AND path = ?",
                (job_id, path),
            ).fetchone()
            found.append(
                OutcomeCount(kind, status, code, items, size, path, message, numbers.get(last))
            )
        return found

    def unseen_since(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        cur = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE job_id = ? "  # noqa: S608
            "AND (seen_round IS NULL OR seen_round < ?) AND status != 'deleted' "
            "AND parent NOT IN (SELECT parent FROM folders_seen WHERE job_id = ? AND round_id = ?) "
            "ORDER BY path",
            (job_id, round_id, job_id, round_id),
        )
        make = ItemRecord._make
        for row in cur:
            yield make(row)

    # --- reconciling with the target -----------------------------------------------------------

    def done_at_target(self, job_id: int, item_ids: Sequence[str]) -> list[TargetKnown]:
        """Through the index items_by_target_id; SQLite takes at most 32,766 parameters, so
        very long lists go in parts."""
        found: list[TargetKnown] = []
        for start in range(0, len(item_ids), 30_000):
            part = item_ids[start : start + 30_000]
            marks = ", ".join("?" * len(part))
            found += map(
                TargetKnown._make,
                self._conn.execute(
                    f"SELECT {TARGET_KNOWN} FROM items "  # noqa: S608 (constants and marks)
                    f"WHERE job_id = ? AND item_id IN ({marks}) AND status = 'done'",
                    (job_id, *part),
                ),
            )
        return found

    def done_not_at_target(self, job_id: int, round_id: int) -> Iterator[TargetKnown]:
        """Read a page at a time, in row order from after the last row of the page before:
        a page is read whole before the caller sees it, so the caller's writes in between
        cannot disturb the reading."""
        after = 0
        while True:
            page = self._conn.execute(
                f"SELECT {TARGET_KNOWN} FROM items WHERE job_id = ? "  # noqa: S608
                "AND status = 'done' AND item_id IS NOT NULL AND id > ? "
                "AND target_seen_round IS NOT ? ORDER BY id LIMIT ?",
                (job_id, after, round_id, _TARGET_PAGE),
            ).fetchall()
            for row in page:
                yield TargetKnown._make(row)
            if len(page) < _TARGET_PAGE:
                return
            after = page[-1][0]
