"""Creating folders: one folder with a conflict behaviour, or every missing folder of a path.

Used by Graph (POST …/children, and uploads by path, which create the folders on the way) and
meant for any other way into the tenant (an import) as well.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sharelift.emulator.store.changes import ChangeLog
from sharelift.emulator.store.database import Database
from sharelift.emulator.store.errors import name_exists, not_found
from sharelift.emulator.store.items import Items
from sharelift.emulator.store.records import Item, Stamp, new_item_id


class Folders:
    """Folder creation. Thread-safe."""

    def __init__(self, db: Database, items: Items, changes: ChangeLog) -> None:
        self._db = db
        self._items = items
        self._changes = changes

    def create(
        self, drive_id: str, parent_id: str, name: str, conflict: str, stamp: Stamp
    ) -> tuple[Item, bool]:
        """Create a folder; returns (folder, created). conflict: fail | replace | rename.

        fail: 409 nameAlreadyExists when the name is taken. rename: `name 1`, `name 2`, ….
        replace: an existing folder is kept as it is (and returned, created=False), as observed
        on OneDrive (OneDrive/onedrive-api-docs#1162: 200 with the folder); an existing file of
        that name is deleted and the folder created. Other failures: DriveError 404 (no such
        parent), 400 (parent is a file, or a name SharePoint refuses)."""
        items = self._items
        with self._db.lock:
            parent = items.folder(drive_id, parent_id)
            items.check_new_name(parent, name, True)
            existing = items.child(drive_id, parent_id, name)
            if existing is not None:
                if conflict == "rename":
                    name = items.free_name(drive_id, parent_id, name, True)
                elif conflict == "replace" and existing.is_folder:
                    return existing, False
                elif conflict == "replace":
                    items.delete(drive_id, existing.id)
                else:
                    raise name_exists()
            item_id = new_item_id()
            with self._db.tx() as db:
                items.insert(db, item_id, drive_id, parent_id, name, True, stamp, time.time())
            item = items.get(drive_id, item_id)
            assert item is not None
            return item, True

    def ensure(self, drive_id: str, base_id: str, segments: Sequence[str], stamp: Stamp) -> Item:
        """The folder at `segments` below the item `base_id`, each missing folder on the way
        created (as Graph does when a file is uploaded by path). An empty `segments` is the
        base itself.

        Raises DriveError 404 when the base is missing or a segment names a file, 400 for a
        name SharePoint refuses."""
        items = self._items
        with self._db.lock:
            folder = items.get(drive_id, base_id)
            for segment in segments:
                if folder is None or not folder.is_folder:
                    raise not_found()
                found = items.child(drive_id, folder.id, segment)
                if found is None:
                    found, _ = self.create(drive_id, folder.id, segment, "fail", stamp)
                folder = found
            if folder is None or not folder.is_folder:
                raise not_found()
            return folder
