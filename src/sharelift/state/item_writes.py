"""The writes to a state store's items, written once for both backends (`portable.py`), and
the column lists both backends read items with.

`ItemWrites` is the part of a state store that changes `items` rows (and `folders_seen`
marks) one statement per call; its methods keep the contract of `sharelift.state.StateStore`.
Each is one `_write` (or `_write_many`) of the backend's, so a per-item write costs no more
here than written out in a backend. What reads items, and so turns their rows into records,
stays with each backend (`sqlite_items.py`, `postgres_items.py`): their statuses come back
differently, and their streams are read differently.
"""

from __future__ import annotations

from collections.abc import Iterable

from sharelift.state.portable import PortableSql
from sharelift.state.records import OUTCOME_STATUSES, ItemStatus, parent_of, utcnow


def item_columns(status: str) -> str:
    """An item's columns in `ItemRecord`'s order, `status` being how the backend names its
    status column (SQLite's with a converter)."""
    return (
        "id, job_id, path, parent, kind, target_path, size, mtime_ns, quick_xor, item_id, etag, "
        f"{status}, error_code, error_message, attempts, round_id, seen_round, started_at, "
        "ended_at, stored_size, stored_hash, verified_by"
    )


TARGET_KNOWN = "id, item_id, kind, coalesce(stored_hash, quick_xor)"
"""An item as `TargetKnown`: the hash the target should report is the stored version's."""
HISTORY_COLUMNS = (
    "i.id, i.job_id, i.path, i.parent, h.kind, h.target_path, h.size, h.mtime_ns, h.quick_xor, "
    "h.item_id, h.etag, h.status, h.error_code, h.error_message, h.attempts, h.round_id, "
    "h.round_id, h.started_at, h.ended_at, h.stored_size, h.stored_hash, h.verified_by"
)
"""An item as an earlier round left it (`item_history`), in `item_columns`' order (that round
had seen it: its `seen_round` is that round)."""
_ITEM_STATUSES = frozenset(ItemStatus)


class ItemWrites(PortableSql):
    """The writes to the `items` table (see the module docstring). Statuses are passed as
    they are: both drivers send a `StrEnum` as its text."""

    _KEEP_COUNTS: str
    """The backend's statement that counts a round into `round_totals` (`keep_round_counts`),
    its parameters the round, the round, the job, the round, the round, the job, the round."""

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
        # A refresh resets the start and end times: they are this round's from now on.
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
                job_id, path, parent_of(path), kind, target_path, size, mtime_ns, status,
                round_id, round_id,
            ),
        )  # fmt: skip
        return int(row_id)

    def mark_seen(self, rows: Iterable[int], round_id: int) -> None:
        self._write_many(
            "UPDATE items SET seen_round = ? WHERE id = ?", [(round_id, r) for r in rows]
        )

    def mark_folder_seen(self, job_id: int, parent: bytes, round_id: int) -> None:
        # A new item the round adds to the folder is marked by `upsert_item` as usual.
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
                item_id, etag, quick_xor, size, mtime_ns, note_code, note, round_id, utcnow(),
                size if stored_size is None else stored_size,
                quick_xor if stored_hash is None else stored_hash,
                verified_by, row,
            ),
        )  # fmt: skip

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
            (status, code, message, round_id, utcnow(), row),
        )

    def keep_round_counts(self, job_id: int, round_id: int) -> None:
        """Count what the round's walk met, now that it closes, into `round_totals`."""
        self._write("DELETE FROM round_totals WHERE round_id = ?", (round_id,))
        self._write(
            self._KEEP_COUNTS, (round_id, round_id, job_id, round_id, round_id, job_id, round_id)
        )
        self._write("UPDATE rounds SET counted = 1 WHERE id = ?", (round_id,))

    def count_items(self, job_id: int) -> dict[str, int]:
        rows = self._read(
            "SELECT status, count(*) FROM items WHERE job_id = ? GROUP BY status", (job_id,)
        )
        return {status: int(n) for status, n in rows}

    def mark_at_target(self, rows: Iterable[int], round_id: int) -> None:
        self._write_many(
            "UPDATE items SET target_seen_round = ? WHERE id = ?", [(round_id, r) for r in rows]
        )
