"""The item tree of each drive: looking items up, placing new ones, deleting them.

Lookups are by id, by name in a folder (case-insensitive, as SharePoint compares names) and by
path below an item; children are listed in lower-case name order. Hot paths use indexes only:
children by `(drive, parent, lower(name))`, the change log by `(drive, seq)`.

Writers that create items (`folders`, `files`, `edits`) decide under `db.lock` with the helpers
here (`folder`, `check_new_name`, `free_name`) and insert with `insert`, so that a name is
checked and taken in one step.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

from sharelift.emulator.store.changes import ChangeLog
from sharelift.emulator.store.database import Database
from sharelift.emulator.store.errors import DriveError, not_found
from sharelift.emulator.store.names import (
    check_name,
    check_path_length,
    conflict_candidate,
    mime_for,
    split_path,
)
from sharelift.emulator.store.records import ITEM_COLS, Identity, Item, Stamp, item_from_row
from sharelift.emulator.store.versions import Versions

# ruff: noqa: S608 — queries are built from constant column lists only; values are bound.


class Items:
    """Reads and structural writes of the item tree. Thread-safe."""

    def __init__(self, db: Database, changes: ChangeLog, versions: Versions) -> None:
        self._db = db
        self._changes = changes
        self._versions = versions

    # -- lookups -----------------------------------------------------------------------------

    def get(self, drive_id: str, item_id: str) -> Item | None:
        """The live item with this id in this drive, or None."""
        r = self._db.one(
            f"SELECT {ITEM_COLS} FROM items WHERE id = ? AND drive_id = ? AND deleted = 0",
            (item_id, drive_id),
        )
        return None if r is None else item_from_row(r)

    def child(self, drive_id: str, parent_id: str, name: str) -> Item | None:
        """The live item named `name` (any case) in a folder, or None."""
        r = self._db.one(
            f"SELECT {ITEM_COLS} FROM items "
            "WHERE drive_id = ? AND parent_id = ? AND name_lower = ? AND deleted = 0",
            (drive_id, parent_id, name.lower()),
        )
        return None if r is None else item_from_row(r)

    def resolve(self, drive_id: str, base_id: str, rel_path: str) -> Item | None:
        """The item at `rel_path` ("a/b", "/a/b/") below the item `base_id` (case-insensitive;
        "" is the base itself), or None. `resolve(d, drive.root_id, path)` looks a path up."""
        with self._db.lock:
            item = self.get(drive_id, base_id)
            for segment in split_path(rel_path):
                if item is None or not item.is_folder:
                    return None
                item = self.child(drive_id, item.id, segment)
            return item

    def path_of(self, item: Item) -> str:
        """The item's path below the root: "" for the root, "/a/b" otherwise."""
        parts: list[str] = []
        with self._db.lock:
            current: tuple[Any, ...] | None = (item.parent_id, item.name)
            while current is not None and current[0] is not None:
                parts.append(current[1])
                current = self._db.one(
                    "SELECT parent_id, name FROM items WHERE id = ?", (current[0],)
                )
        return "".join("/" + p for p in reversed(parts))

    def by_unique_id(self, drive_ids: list[str], unique_id: str) -> Item | None:
        """The live item of one of `drive_ids` whose unique id (SharePoint's `UniqueId`, Graph's
        `sharepointIds.listItemUniqueId`) is `unique_id`, in any case; or None."""
        if not drive_ids:
            return None
        marks = ",".join("?" * len(drive_ids))
        r = self._db.one(
            f"SELECT {ITEM_COLS} FROM items WHERE guid = ? AND deleted = 0 "
            f"AND drive_id IN ({marks})",
            (unique_id.upper(), *drive_ids),
        )
        return None if r is None else item_from_row(r)

    def children(self, drive_id: str, parent_id: str, after: str | None, limit: int) -> list[Item]:
        """Children ordered by lower-case name, starting after the lower-case name `after`."""
        rows = self._db.all(
            f"SELECT {ITEM_COLS} FROM items WHERE drive_id = ? AND parent_id = ? "
            "AND deleted = 0 AND name_lower > ? ORDER BY name_lower LIMIT ?",
            (drive_id, parent_id, after or "", limit),
        )
        return [item_from_row(r) for r in rows]

    # -- deciding where a new item goes ------------------------------------------------------

    def folder(self, drive_id: str, folder_id: str) -> Item:
        """The folder `folder_id`; DriveError 404 when missing, 400 when it is a file."""
        parent = self.get(drive_id, folder_id)
        if parent is None:
            raise not_found()
        if not parent.is_folder:
            raise DriveError(400, "invalidRequest", "The parent item is not a folder.")
        return parent

    def check_new_name(self, parent: Item, name: str, is_folder: bool) -> None:
        """Raise DriveError(400) when `name` may not be created in `parent` (name rules, path
        length)."""
        check_name(name, is_folder=is_folder, at_root=parent.is_root)
        check_path_length(self.path_of(parent), name)

    def free_name(self, drive_id: str, parent_id: str, name: str, is_folder: bool) -> str:
        """`name` if it is free in the folder, else the first free rename candidate (`a 1.txt`).
        Hold `db.lock` until the name is taken."""
        candidate, n = name, 0
        while self.child(drive_id, parent_id, candidate) is not None:
            n += 1
            candidate = conflict_candidate(name, is_folder, n)
        return candidate

    # -- writes (inside a transaction) -------------------------------------------------------

    def insert(
        self,
        db: sqlite3.Connection,
        item_id: str,
        drive_id: str,
        parent_id: str | None,
        name: str,
        is_folder: bool,
        stamp: Stamp,
        now: float,
        *,
        size: int = 0,
        qxh: str | None = None,
        content_key: str | None = None,
    ) -> None:
        """Add an item row (version 1 of a file: its version row is the caller's) and count it
        in its parent's childCount. The caller has checked the name."""
        by_json = json.dumps(stamp.by)
        db.execute(
            f"INSERT INTO items ({ITEM_COLS}, name_lower) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,1,1,?,?,?,?,?,?,?,0,0,?,?)",
            (
                item_id,
                drive_id,
                parent_id,
                name,
                is_folder,
                size,
                None if is_folder else mime_for(name),
                qxh,
                content_key,
                str(uuid.uuid4()).upper(),
                0 if is_folder else 1,
                now,
                now,
                stamp.fs_created if stamp.fs_created is not None else now,
                stamp.fs_modified if stamp.fs_modified is not None else now,
                by_json,
                by_json,
                self._changes.next_seq(),
                name.lower(),
            ),
        )
        if parent_id is not None:
            db.execute("UPDATE items SET child_count = child_count + 1 WHERE id = ?", (parent_id,))

    def grow(self, db: sqlite3.Connection, folder_id: str, delta: int) -> None:
        """Add `delta` bytes to a folder's size and to every folder above it: a folder's size
        is the total size of the files below it, as OneDrive for Business reports it."""
        if delta:
            db.execute(
                "WITH RECURSIVE up(id) AS (SELECT ? UNION ALL SELECT i.parent_id FROM items i "
                "JOIN up ON i.id = up.id WHERE i.parent_id IS NOT NULL) "
                "UPDATE items SET size = size + ? WHERE id IN (SELECT id FROM up)",
                (folder_id, delta),
            )

    # -- delete ------------------------------------------------------------------------------

    def set_origin(
        self,
        drive_id: str,
        item_id: str,
        unique_id: str,
        created: float | None,
        modified: float | None,
        created_by: Identity,
        modified_by: Identity,
    ) -> None:
        """Give an item the identity an import package says it has: its unique id, its times
        created and modified (the item's and its fileSystemInfo's) and its authors. Times left
        None stay as they are. A change for delta."""
        with self._db.tx() as db:
            db.execute(
                "UPDATE items SET guid = ?, created = COALESCE(?, created), "
                "modified = COALESCE(?, modified), fs_created = COALESCE(?, fs_created), "
                "fs_modified = COALESCE(?, fs_modified), created_by = ?, modified_by = ?, "
                "seq = ? WHERE id = ? AND drive_id = ?",
                (
                    unique_id.upper(),
                    created,
                    modified,
                    created,
                    modified,
                    json.dumps(created_by),
                    json.dumps(modified_by),
                    self._changes.next_seq(),
                    item_id,
                    drive_id,
                ),
            )

    def delete(self, drive_id: str, item_id: str) -> None:
        """Delete an item and everything below it (to the recycle bin: the bytes move from
        quota `used` to `deleted`). The items stay as tombstones for delta."""
        with self._db.lock:
            item = self.get(drive_id, item_id)
            if item is None:
                raise not_found()
            if item.is_root:
                raise DriveError(403, "accessDenied", "The root of a drive cannot be deleted.")
            assert item.parent_id is not None
            with self._db.tx() as db:
                ids = [
                    r[0]
                    for r in db.execute(
                        "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL "
                        "SELECT i.id FROM items i JOIN sub ON i.parent_id = sub.id "
                        "WHERE i.deleted = 0) SELECT id FROM sub",
                        (item_id,),
                    )
                ]
                self._versions.recycle(db, drive_id, ids)
                for deleted_id in ids:
                    db.execute(
                        "UPDATE items SET deleted = 1, seq = ? WHERE id = ?",
                        (self._changes.next_seq(), deleted_id),
                    )
                db.execute(
                    "UPDATE items SET child_count = child_count - 1 WHERE id = ?",
                    (item.parent_id,),
                )
                self.grow(db, item.parent_id, -item.size)
