"""What a state store keeps of the work left at the target besides upload sessions: files
moved aside while replaced, and old versions to remove; for both backends (the SQL is written
once: `portable.py`).

`TargetWork` is the part of a state store that keeps the `moved_aside` and `version_prunes`
tables and the items' `prune_versions` marks; its methods keep the contract of
`sharelift.state.StateStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sharelift.state.portable import PortableSql
from sharelift.state.records import MovedAside, utcnow

_ASIDE = "item_row, item_id, parent_id, name, aside_name"
_PART = 30_000
"""Ids per query (SQLite allows 32,766 parameters)."""


class TargetWork(PortableSql):
    """Files moved aside, and old versions to remove (see the module docstring)."""

    # --- old versions --------------------------------------------------------------------------

    def mark_prune(self, row: int, wanted: bool) -> None:
        self._write(
            self._q("UPDATE items SET prune_versions = ? WHERE id = ?"),
            (1 if wanted else None, row),
        )
        self.flush()

    def prunes_pending(self, job_id: int) -> list[tuple[int, str]]:
        rows = self._read(
            "SELECT id, item_id FROM items WHERE job_id = ? AND prune_versions = 1 "
            "AND status = 'done' AND item_id IS NOT NULL ORDER BY id",
            (job_id,),
        )
        return [(int(r), str(i)) for r, i in rows]

    def pruned_among(self, key: str, item_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(item_ids), _PART):
            among, params = self._in("item_id", item_ids[start : start + _PART])
            found.update(
                i
                for (i,) in self._read(
                    f"SELECT item_id FROM version_prunes WHERE key = ? AND {among}",  # noqa: S608
                    (key, *params),
                )
            )
        return found

    def record_pruned(self, key: str, item_ids: Iterable[str]) -> None:
        self._write_many(
            self._q(
                "INSERT INTO version_prunes (key, item_id) VALUES (?, ?) "
                "ON CONFLICT (key, item_id) DO NOTHING"
            ),
            [(key, i) for i in item_ids],
        )

    def forget_pruned(self, key: str) -> None:
        self._write(self._q("DELETE FROM version_prunes WHERE key = ?"), (key,))
        self.flush()

    # --- files moved aside ---------------------------------------------------------------------

    def save_moved_aside(self, aside: MovedAside) -> None:
        self._write(
            self._q(
                f"INSERT INTO moved_aside ({_ASIDE}, created_at) VALUES (?, ?, ?, ?, ?, ?) "  # noqa: S608
                "ON CONFLICT (item_row) DO UPDATE SET item_id = excluded.item_id, "
                "parent_id = excluded.parent_id, name = excluded.name, "
                "aside_name = excluded.aside_name, created_at = excluded.created_at"
            ),
            (*aside, utcnow()),
        )
        self.flush()

    def moved_aside(self, row: int) -> MovedAside | None:
        found = self._read(
            f"SELECT {_ASIDE} FROM moved_aside WHERE item_row = ?",  # noqa: S608
            (row,),
        )
        return MovedAside._make(found[0]) if found else None

    def moved_aside_of_job(self, job_id: int) -> list[MovedAside]:
        rows = self._read(
            f"SELECT {', '.join('a.' + c for c in _ASIDE.split(', '))} FROM moved_aside a "  # noqa: S608
            "JOIN items i ON i.id = a.item_row WHERE i.job_id = ? ORDER BY a.item_row",
            (job_id,),
        )
        return [MovedAside._make(r) for r in rows]

    def drop_moved_aside(self, row: int) -> None:
        self._write(self._q("DELETE FROM moved_aside WHERE item_row = ?"), (row,))
        self.flush()
