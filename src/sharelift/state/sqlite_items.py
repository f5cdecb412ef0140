"""The items of a SQLite state store: reading, writing, and reconciling with the target.

`ItemRows` is the part of `SqliteStateStore` that keeps the `items` table (and the
`folders_seen` marks); its methods keep the contract of `sharelift.state.StateStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

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
from sharelift.state.sqlite_db import ITEM_STATUS, GroupedWrites

_ITEM_COLUMNS = (
    "id, job_id, path, parent, kind, target_path, size, mtime_ns, quick_xor, item_id, etag, "
    f"{ITEM_STATUS}, error_code, error_message, attempts, round_id, seen_round, started_at, "
    "ended_at, stored_size, stored_hash, verified_by"
)
_TARGET_KNOWN = "id, item_id, kind, coalesce(stored_hash, quick_xor)"
_HISTORY_COLUMNS = (
    "i.id, i.job_id, i.path, i.parent, h.kind, h.target_path, h.size, h.mtime_ns, h.quick_xor, "
    "h.item_id, h.etag, h.status, h.error_code, h.error_message, h.attempts, h.round_id, "
    "h.round_id, h.started_at, h.ended_at, h.stored_size, h.stored_hash, h.verified_by"
)
"""An item as an earlier round left it (`item_history`), in `_ITEM_COLUMNS`' order (that round
had seen it: its `seen_round` is that round)."""
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
_ITEM_STATUSES = frozenset(ItemStatus)
_TARGET_PAGE = 1000
"""Rows per query of `done_not_at_target` (pages, so the caller may write in between)."""


class ItemRows(GroupedWrites):
    """The `items` table of a state store (see the module docstring)."""

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
        """Every known item directly inside the folder `parent`, by path: one query per folder."""
        rows = self._conn.execute(
            f"SELECT id, path, {ITEM_STATUS}, item_id, target_path, size, mtime_ns "  # noqa: S608
            "FROM items WHERE job_id = ? AND parent = ?",
            (job_id, parent),
        ).fetchall()
        make = KnownItem._make
        return {r[1]: make(r) for r in rows}

    def items(self, job_id: int, status: ItemStatus | None = None) -> Iterator[ItemRecord]:
        """Items of a job (optionally of one status), in path order, streamed."""
        if status is None:
            return self._items_where("job_id = ?", (job_id,))
        return self._items_where("job_id = ? AND status = ?", (job_id, status))

    def round_items(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        """Items that a round changed, as the round left them, in path order, streamed: those
        whose `round_id` is its id, and those a later round changed since (their outcome in
        this round kept in `item_history` by a trigger). An item the round only saw unchanged
        is not among them."""
        cur = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE job_id = ? AND round_id = ? "  # noqa: S608
            f"UNION ALL SELECT {_HISTORY_COLUMNS} FROM item_history h "
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
        """The job's items of one status that carry a code, in path order, streamed."""
        return self._items_where(
            "job_id = ? AND status = ? AND coalesce(error_code, '') != ''", (job_id, status)
        )

    def round_counts(self, job_id: int, round_id: int) -> list[RoundCount]:
        """What a round's walk met: one `RoundCount` per kind, status, changed-or-only-seen,
        with-or-without a note and started-or-not, over the items the round changed or saw.
        A closed round's counts were kept when it closed (`keep_round_counts`: later rounds
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

    def keep_round_counts(self, job_id: int, round_id: int) -> None:
        """Count what the round's walk met, now that it closes, into `round_totals`."""
        self._write("DELETE FROM round_totals WHERE round_id = ?", (round_id,))
        self._write(
            "INSERT INTO round_totals (round_id, kind, status, changed, noted, started, items, "  # noqa: S608 (a constant)
            f"size) SELECT ?, * FROM ({_COUNTS.format(status='status')})",
            (round_id, round_id, job_id, round_id, round_id, job_id, round_id),
        )
        self._write("UPDATE rounds SET counted = 1 WHERE id = ?", (round_id,))

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

    def count_items(self, job_id: int) -> dict[str, int]:
        """How many items of a job are in each status."""
        rows = self._conn.execute(
            "SELECT status, count(*) FROM items WHERE job_id = ? GROUP BY status", (job_id,)
        ).fetchall()
        return {status: n for status, n in rows}

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
        """Create or refresh an item as seen by this round's walk; returns its row id.

        A refresh keeps what the target already has (item id, eTag, hash) so that the planner
        can compare; it only resets the status when the caller says so. Its start and end
        times are this round's from now on (none yet).
        """
        if status not in _ITEM_STATUSES:
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
                job_id,
                path,
                parent_of(path),
                kind,
                target_path,
                size,
                mtime_ns,
                status,
                round_id,
                round_id,
            ),
        )
        return int(row_id)

    def mark_seen(self, rows: Iterable[int], round_id: int) -> None:
        """Note that this round's walk saw these unchanged items (for --mirror deletions)."""
        self._write_many(
            "UPDATE items SET seen_round = ? WHERE id = ?", [(round_id, r) for r in rows]
        )

    def mark_folder_seen(self, job_id: int, parent: bytes, round_id: int) -> None:
        """Note that this round's walk saw every item the store knows directly inside the
        folder `parent`, unchanged: `mark_seen` for all of them, written once for the folder
        (in `folders_seen`) instead of once per item. Only for a folder none of whose known
        items is missing from the walk; a new item the round adds there is marked by
        `upsert_item` as usual."""
        self._write(
            "INSERT INTO folders_seen (job_id, parent, round_id) VALUES (?, ?, ?) "
            "ON CONFLICT (job_id, parent) DO UPDATE SET round_id = excluded.round_id",
            (job_id, parent, round_id),
        )

    def mark_started(self, row: int, round_id: int) -> None:
        """An attempt on the target begins: counted, so a crash mid-way is visible on resume."""
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
        """The target holds this item, verified: the only way an item becomes `done`.

        `note_code` / `note` keep a warning with it (renamed by a rule: which rule and why);
        `verified_by`, `stored_size` and `stored_hash` say how it was proved and what the
        target stores (the bytes read when None).
        """
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
                verified_by,
                row,
            ),
        )

    def note_target_item(self, row: int, item_id: str) -> None:
        """An unverified item the row's upload made at the target: its id, at once."""
        self._write("UPDATE items SET item_id = ? WHERE id = ?", (item_id, row))
        self.flush()

    def record_outcome(
        self, row: int, *, round_id: int, status: ItemStatus, code: str, message: str
    ) -> None:
        """The item failed, or was skipped or blocked by a rule; the message says why."""
        if status not in OUTCOME_STATUSES:
            raise ValueError(f"not an outcome status: {status}")
        self._write(
            "UPDATE items SET status = ?, error_code = ?, error_message = ?, round_id = ?, "
            "ended_at = ? WHERE id = ?",
            (status, code, message, round_id, utcnow(), row),
        )

    def unseen_since(self, job_id: int, round_id: int) -> Iterator[ItemRecord]:
        """Items the given round's walk did not see: deleted at the source (for --mirror)."""
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
        """The job's done items among these target ids: one query (index items_by_target_id);
        SQLite takes at most 32,766 parameters, so very long lists go in parts."""
        found: list[TargetKnown] = []
        for start in range(0, len(item_ids), 30_000):
            part = item_ids[start : start + 30_000]
            marks = ", ".join("?" * len(part))
            found += map(
                TargetKnown._make,
                self._conn.execute(
                    f"SELECT {_TARGET_KNOWN} FROM items "  # noqa: S608 (constants and marks)
                    f"WHERE job_id = ? AND item_id IN ({marks}) AND status = 'done'",
                    (job_id, *part),
                ),
            )
        return found

    def mark_at_target(self, rows: Iterable[int], round_id: int) -> None:
        self._write_many(
            "UPDATE items SET target_seen_round = ? WHERE id = ?", [(round_id, r) for r in rows]
        )

    def done_not_at_target(self, job_id: int, round_id: int) -> Iterator[TargetKnown]:
        """Read a page at a time, in row order from after the last row of the page before:
        a page is read whole before the caller sees it, so the caller's writes in between
        cannot disturb the reading."""
        after = 0
        while True:
            page = self._conn.execute(
                f"SELECT {_TARGET_KNOWN} FROM items WHERE job_id = ? "  # noqa: S608
                "AND status = 'done' AND item_id IS NOT NULL AND id > ? "
                "AND target_seen_round IS NOT ? ORDER BY id LIMIT ?",
                (job_id, after, round_id, _TARGET_PAGE),
            ).fetchall()
            for row in page:
                yield TargetKnown._make(row)
            if len(page) < _TARGET_PAGE:
                return
            after = page[-1][0]
