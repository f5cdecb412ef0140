"""The change log behind delta: every change to an item gives it the tenant's next sequence number.

An item row carries the number of its last change (`items.seq`, indexed by drive), deleted items
stay as tombstones, so "what changed in this drive since position n" is one indexed range query.
Delta tokens carry a position and the drive's epoch; raising the epoch invalidates every token
issued before (Graph then answers 410 resyncRequired).
"""

from __future__ import annotations

import sqlite3

from sharelift.emulator.store.database import Database
from sharelift.emulator.store.records import ITEM_COLS, Item, item_from_row


class ChangeLog:
    """Sequence numbers and the queries delta needs. Thread-safe."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._seq: int = int(db.scalar("SELECT COALESCE(MAX(seq), 0) FROM items"))

    def next_seq(self) -> int:
        """The next position, for an item being written. Call it inside `db.tx()`."""
        self._seq += 1
        return self._seq

    def current_seq(self) -> int:
        """The position of the latest change."""
        with self._db.lock:
            return self._seq

    def since(self, drive_id: str, after_seq: int, limit: int) -> list[Item]:
        """Items (tombstones included) changed after `after_seq`, oldest change first."""
        rows = self._db.all(
            f"SELECT {ITEM_COLS} FROM items WHERE drive_id = ? AND seq > ? "  # noqa: S608
            "ORDER BY seq LIMIT ?",
            (drive_id, after_seq, limit),
        )
        return [item_from_row(r) for r in rows]

    def touch_below(self, db: sqlite3.Connection, folder_id: str) -> None:
        """Report everything below a folder again, after it (in a transaction): a moved or
        renamed folder gives its whole subtree new paths, and a delta page must list a parent
        before its children."""
        below = [
            r[0]
            for r in db.execute(
                "WITH RECURSIVE sub(id) AS (SELECT id FROM items WHERE parent_id = ? "
                "AND deleted = 0 UNION ALL SELECT i.id FROM items i JOIN sub "
                "ON i.parent_id = sub.id WHERE i.deleted = 0) SELECT id FROM sub",
                (folder_id,),
            )
        ]
        for child_id in below:
            db.execute("UPDATE items SET seq = ? WHERE id = ?", (self.next_seq(), child_id))

    def epoch(self, drive_id: str) -> int:
        """Delta tokens carry this number; tokens of an older epoch answer 410."""
        return int(self._db.scalar("SELECT delta_epoch FROM drives WHERE id = ?", (drive_id,)) or 0)

    def expire_tokens(self, drive_id: str) -> None:
        """Make every delta token issued so far for this drive answer 410 (resync)."""
        with self._db.tx() as db:
            db.execute("UPDATE drives SET delta_epoch = delta_epoch + 1 WHERE id = ?", (drive_id,))
