"""Changes to existing items: rename, move, fileSystemInfo times (Graph's PATCH), and copy.

Deleting is `Items.delete`; new content for a file is `Files.replace`.
"""

from __future__ import annotations

import json
import sqlite3
import time

from sharelift.emulator.store.changes import ChangeLog
from sharelift.emulator.store.database import Database
from sharelift.emulator.store.errors import DriveError, name_exists, not_found
from sharelift.emulator.store.items import Items
from sharelift.emulator.store.names import check_name
from sharelift.emulator.store.records import Identity, Item, Stamp, new_item_id
from sharelift.emulator.store.versions import Versions


class Edits:
    """PATCH and copy of items. Thread-safe."""

    def __init__(self, db: Database, items: Items, versions: Versions, changes: ChangeLog) -> None:
        self._db = db
        self._items = items
        self._versions = versions
        self._changes = changes

    def _check_not_below(self, drive_id: str, folder: Item, moved: Item, what: str) -> None:
        """Raise DriveError(400) when `folder` is `moved` or lies below it."""
        probe: Item | None = folder
        while probe is not None:
            if probe.id == moved.id:
                raise DriveError(400, "invalidRequest", f"Cannot {what} a folder into itself.")
            probe = None if probe.parent_id is None else self._items.get(drive_id, probe.parent_id)

    def update(
        self,
        drive_id: str,
        item_id: str,
        by: Identity,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        fs_created: float | None = None,
        fs_modified: float | None = None,
        conflict: str = "fail",
    ) -> Item:
        """PATCH: rename, move, set fileSystemInfo. On a file, a change of fileSystemInfo adds a
        version that counts against the quota, as OneDrive for Business does (rclone's OneDrive
        docs, section "Versions": changing a file's modification time creates a second version,
        so the file apparently uses twice the space)."""
        items = self._items
        with self._db.lock:
            item = items.get(drive_id, item_id)
            if item is None:
                raise not_found()
            if item.is_root and (name is not None or parent_id is not None):
                raise DriveError(400, "invalidRequest", "The root cannot be renamed or moved.")
            new_parent_id = parent_id or item.parent_id
            new_name = name if name is not None else item.name
            moved = new_parent_id != item.parent_id
            renamed = new_name != item.name
            if moved or renamed:
                assert new_parent_id is not None
                parent = items.folder(drive_id, new_parent_id)
                if moved and item.is_folder:
                    self._check_not_below(drive_id, parent, item, "move")
                if moved or new_name.lower() != item.name.lower():
                    items.check_new_name(parent, new_name, item.is_folder)
                    existing = items.child(drive_id, new_parent_id, new_name)
                    if existing is not None and existing.id != item.id:
                        if conflict == "rename":
                            new_name = items.free_name(
                                drive_id, new_parent_id, new_name, item.is_folder
                            )
                        elif conflict == "replace":
                            items.delete(drive_id, existing.id)
                        else:
                            raise name_exists()
                else:
                    check_name(new_name, is_folder=item.is_folder, at_root=parent.is_root)
            fs_changed = fs_created is not None or fs_modified is not None
            new_version = fs_changed and not item.is_folder
            if new_version:
                self._versions.check_quota(drive_id, item.size)
            now = time.time()
            with self._db.tx() as db:
                db.execute(
                    "UPDATE items SET name = ?, name_lower = ?, parent_id = ?, "
                    "fs_created = COALESCE(?, fs_created), fs_modified = COALESCE(?, fs_modified),"
                    " etag_n = etag_n + 1, modified = ?, modified_by = ?, seq = ?,"
                    " version_n = version_n + ? WHERE id = ?",
                    (
                        new_name,
                        new_name.lower(),
                        new_parent_id,
                        fs_created,
                        fs_modified,
                        now,
                        json.dumps(by),
                        self._changes.next_seq(),
                        int(new_version),
                        item_id,
                    ),
                )
                if moved:
                    assert item.parent_id is not None and new_parent_id is not None
                    db.execute(
                        "UPDATE items SET child_count = child_count - 1 WHERE id = ?",
                        (item.parent_id,),
                    )
                    db.execute(
                        "UPDATE items SET child_count = child_count + 1 WHERE id = ?",
                        (new_parent_id,),
                    )
                    items.grow(db, item.parent_id, -item.size)
                    items.grow(db, new_parent_id, item.size)
                if (moved or renamed) and item.is_folder:
                    self._changes.touch_below(db, item_id)
                if new_version:
                    assert item.content_key is not None
                    self._versions.add(
                        db,
                        drive_id,
                        item_id,
                        item.version_n + 1,
                        item.size,
                        item.content_key,
                        now,
                        by,
                    )
            updated = items.get(drive_id, item_id)
            assert updated is not None
            return updated

    def copy(
        self,
        drive_id: str,
        item_id: str,
        parent_id: str,
        name: str | None,
        conflict: str,
        by: Identity,
    ) -> Item:
        """Copy an item (a folder with everything below it) into a folder of the same drive.

        The copies share the originals' content files (content is never rewritten in place) and
        count against the quota like new uploads. conflict: fail | rename (replace fails too).
        Returns the top copy."""
        items = self._items
        with self._db.lock:
            source = items.get(drive_id, item_id)
            if source is None:
                raise not_found()
            if source.is_root:
                raise DriveError(400, "invalidRequest", "The root of a drive cannot be copied.")
            parent = items.folder(drive_id, parent_id)
            target_name = name or source.name
            items.check_new_name(parent, target_name, source.is_folder)
            if items.child(drive_id, parent_id, target_name) is not None:
                if conflict != "rename":
                    raise name_exists()
                target_name = items.free_name(drive_id, parent_id, target_name, source.is_folder)
            self._check_not_below(drive_id, parent, source, "copy")
            self._versions.check_quota(drive_id, source.size)
            now = time.time()
            with self._db.tx() as db:
                top = self._copy_into(db, drive_id, source, parent_id, target_name, now, by)
                items.grow(db, parent_id, source.size)
            copied = items.get(drive_id, top)
            assert copied is not None
            return copied

    def _copy_into(
        self,
        db: sqlite3.Connection,
        drive_id: str,
        source: Item,
        parent_id: str,
        name: str,
        now: float,
        by: Identity,
    ) -> str:
        new_id = new_item_id()
        self._items.insert(
            db,
            new_id,
            drive_id,
            parent_id,
            name,
            source.is_folder,
            Stamp(by, source.fs_created, source.fs_modified),
            now,
            size=source.size,
            qxh=source.qxh,
            content_key=source.content_key,
        )
        if source.is_folder:
            for child in self._items.children(drive_id, source.id, None, 1 << 30):
                self._copy_into(db, drive_id, child, new_id, child.name, now, by)
        else:
            assert source.content_key is not None
            self._versions.add(db, drive_id, new_id, 1, source.size, source.content_key, now, by)
        return new_id
