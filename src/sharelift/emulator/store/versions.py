"""File versions and the quota they use.

OneDrive for Business and SharePoint keep a version of a file on every change of its content
(and of its fileSystemInfo), and every version counts against the drive's quota; deleting moves
those bytes from `used` to `deleted` (the recycle bin), whether the file goes or one of its older
versions does. A write that would pass the quota is refused with 507 insufficientStorage.
"""

from __future__ import annotations

import json
import sqlite3

from sharelift.emulator.store.database import Database
from sharelift.emulator.store.errors import DriveError, insufficient_storage, not_found
from sharelift.emulator.store.records import Identity, Item, Version


class Versions:
    """Version rows and each drive's quota accounting. Thread-safe."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def of(self, item: Item) -> list[Version]:
        """All versions of a file, newest first (the current one included)."""
        rows = self._db.all(
            "SELECT item_id, n, size, content_key, modified, modified_by FROM versions "
            "WHERE item_id = ? ORDER BY n DESC",
            (item.id,),
        )
        return [Version(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def check_quota(self, drive_id: str, extra: int) -> None:
        """Raise DriveError(507) when `extra` more bytes would pass the drive's quota."""
        row = self._db.one("SELECT used, quota_total FROM drives WHERE id = ?", (drive_id,))
        assert row is not None, drive_id
        if row[0] + extra > row[1]:
            raise insufficient_storage()

    def add(
        self,
        db: sqlite3.Connection,
        drive_id: str,
        item_id: str,
        n: int,
        size: int,
        content_key: str,
        now: float,
        by: Identity,
    ) -> None:
        """Record version `n` of a file and count its bytes as used (in a transaction)."""
        db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
            (item_id, n, size, content_key, now, json.dumps(by)),
        )
        db.execute("UPDATE drives SET used = used + ? WHERE id = ?", (size, drive_id))

    def recycle(self, db: sqlite3.Connection, drive_id: str, item_ids: list[str]) -> None:
        """Move the bytes of every version of these items from used to deleted (in a
        transaction): they went to the recycle bin."""
        freed = 0
        for start in range(0, len(item_ids), 500):
            chunk = item_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            freed += db.execute(
                f"SELECT COALESCE(SUM(size), 0) FROM versions WHERE item_id IN ({marks})",  # noqa: S608
                chunk,
            ).fetchone()[0]
        db.execute(
            "UPDATE drives SET used = used - ?, deleted = deleted + ? WHERE id = ?",
            (freed, freed, drive_id),
        )

    def delete(self, drive_id: str, item: Item, n: int) -> None:
        """Delete version `n` of a file, an older one: its bytes go from used to deleted.
        DriveError 404 when there is no such version, 400 for the current one (restore an
        older one instead, as SharePoint asks)."""
        with self._db.tx() as db:
            newest = db.execute(
                "SELECT max(n) FROM versions WHERE item_id = ?", (item.id,)
            ).fetchone()[0]
            row = db.execute(
                "SELECT size FROM versions WHERE item_id = ? AND n = ?", (item.id, n)
            ).fetchone()
            if row is None:
                raise not_found()
            if n == newest:
                raise DriveError(400, "invalidRequest", "The current version cannot be deleted.")
            db.execute("DELETE FROM versions WHERE item_id = ? AND n = ?", (item.id, n))
            db.execute(
                "UPDATE drives SET used = used - ?, deleted = deleted + ? WHERE id = ?",
                (row[0], row[0], drive_id),
            )

    def set_quota(self, drive_id: str, total: int) -> None:
        """Set a drive's quota in bytes; raises KeyError for an unknown drive."""
        with self._db.tx() as db:
            changed = db.execute(
                "UPDATE drives SET quota_total = ? WHERE id = ?", (total, drive_id)
            ).rowcount
            if changed != 1:
                raise KeyError(drive_id)
