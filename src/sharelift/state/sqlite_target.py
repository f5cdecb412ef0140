"""What a SQLite state store keeps of the work left at the target besides upload sessions:
files moved aside while replaced, and old versions to remove.

`TargetWork` is the part of `SqliteStateStore` that keeps the `moved_aside` and
`version_prunes` tables and the items' `prune_versions` marks; its methods keep the contract of
`sharelift.state.StateStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sharelift.state.records import MovedAside, utcnow
from sharelift.state.sqlite_db import GroupedWrites

_ASIDE = "item_row, item_id, parent_id, name, aside_name"


class TargetWork(GroupedWrites):
    """Files moved aside, and old versions to remove (see the module docstring)."""

    # --- old versions --------------------------------------------------------------------------

    def mark_prune(self, row: int, wanted: bool) -> None:
        self._write(
            "UPDATE items SET prune_versions = ? WHERE id = ?", (1 if wanted else None, row)
        )
        self.flush()

    def prunes_pending(self, job_id: int) -> list[tuple[int, str]]:
        rows = self._conn.execute(
            "SELECT id, item_id FROM items WHERE job_id = ? AND prune_versions = 1 "
            "AND status = 'done' AND item_id IS NOT NULL ORDER BY id",
            (job_id,),
        ).fetchall()
        return [(int(r), str(i)) for r, i in rows]

    def pruned_among(self, key: str, item_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(item_ids), 30_000):
            part = item_ids[start : start + 30_000]
            marks = ", ".join("?" * len(part))
            found.update(
                i
                for (i,) in self._conn.execute(
                    f"SELECT item_id FROM version_prunes WHERE key = ? AND item_id IN ({marks})",  # noqa: S608
                    (key, *part),
                )
            )
        return found

    def record_pruned(self, key: str, item_ids: Iterable[str]) -> None:
        self._write_many(
            "INSERT OR IGNORE INTO version_prunes (key, item_id) VALUES (?, ?)",
            [(key, i) for i in item_ids],
        )

    def forget_pruned(self, key: str) -> None:
        self._write("DELETE FROM version_prunes WHERE key = ?", (key,))
        self.flush()

    # --- files moved aside ---------------------------------------------------------------------

    def save_moved_aside(self, aside: MovedAside) -> None:
        self._write(
            f"INSERT OR REPLACE INTO moved_aside ({_ASIDE}, created_at) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?)",
            (*aside, utcnow()),
        )
        self.flush()

    def moved_aside(self, row: int) -> MovedAside | None:
        found = self._conn.execute(
            f"SELECT {_ASIDE} FROM moved_aside WHERE item_row = ?",  # noqa: S608
            (row,),
        ).fetchone()
        return MovedAside._make(found) if found else None

    def moved_aside_of_job(self, job_id: int) -> list[MovedAside]:
        rows = self._conn.execute(
            f"SELECT {', '.join('a.' + c for c in _ASIDE.split(', '))} FROM moved_aside a "  # noqa: S608
            "JOIN items i ON i.id = a.item_row WHERE i.job_id = ? ORDER BY a.item_row",
            (job_id,),
        ).fetchall()
        return [MovedAside._make(r) for r in rows]

    def drop_moved_aside(self, row: int) -> None:
        self._write("DELETE FROM moved_aside WHERE item_row = ?", (row,))
        self.flush()
