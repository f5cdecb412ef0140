"""File content: staging bodies, and committing them as a new file or a new version of one.

Content lives in `data_dir/content/<key>`, one file per version, never rewritten in place (copies
share it). A body is first staged in `data_dir/tmp` while it is hashed (`stage`, or a route
streaming into `staging_path()`), then committed with `put` (by name in a folder, with a conflict
behaviour) or `replace` (by item id). Both end in `_commit`, the one place where content enters
the tenant: the commit hooks run there, before the name is decided and the bytes are stored.

A commit hook is how the service's own changes to a file are modelled (SharePoint rewrites
Office documents committed to site libraries): `hook(drive, name, content)` returns the content
to store, either the one given or a new staged file (the one given is then removed), and may
raise DriveError to refuse the commit. Hooks run outside the store's lock.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from sharelift.emulator.store.changes import ChangeLog
from sharelift.emulator.store.database import Database
from sharelift.emulator.store.errors import DriveError, name_exists, not_found
from sharelift.emulator.store.items import Items
from sharelift.emulator.store.records import Content, Drive, Item, Stamp, new_item_id
from sharelift.emulator.store.versions import Versions
from sharelift.quickxorhash import QuickXorHash

CommitHook = Callable[[Drive, str, Content], Content]
"""`hook(drive, file name, staged content) -> content to store` (see the module docstring)."""

DriveLookup = Callable[[str], Drive | None]


class Files:
    """Staging and committing file content. Thread-safe."""

    def __init__(
        self,
        db: Database,
        data_dir: Path,
        items: Items,
        versions: Versions,
        changes: ChangeLog,
        drives: DriveLookup,
    ) -> None:
        self._db = db
        self.content_dir = data_dir / "content"
        self.tmp_dir = data_dir / "tmp"
        self._items = items
        self._versions = versions
        self._changes = changes
        self._drives = drives
        self._hooks: list[CommitHook] = []

    def add_commit_hook(self, hook: CommitHook) -> None:
        """Run `hook` on every file committed from now on (after those added before)."""
        self._hooks.append(hook)

    def content_path(self, content_key: str) -> Path:
        """Where a version's bytes are (`Item.content_key`, `Version.content_key`)."""
        return self.content_dir / content_key

    def staging_path(self) -> Path:
        """A fresh path in the tmp folder to stage a body into (see `Content`)."""
        return self.tmp_dir / uuid.uuid4().hex

    def stage(self, chunks: Iterable[bytes]) -> Content:
        """Write a body to a tmp file while hashing it (for callers with the bytes in hand)."""
        path = self.staging_path()
        hasher = QuickXorHash()
        size = 0
        with open(path, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                hasher.update(chunk)
                size += len(chunk)
        return Content(path, size, base64.b64encode(hasher.digest()).decode("ascii"))

    def adopt(self, path: Path) -> Content:
        """A file already written into the tmp folder (a commit hook's output), hashed."""
        hasher = QuickXorHash()
        size = 0
        with open(path, "rb") as f:
            while block := f.read(4 * 1024 * 1024):
                hasher.update(block)
                size += len(block)
        return Content(path, size, base64.b64encode(hasher.digest()).decode("ascii"))

    def put(
        self,
        drive_id: str,
        parent_id: str,
        name: str,
        content: Content,
        conflict: str,
        stamp: Stamp,
    ) -> tuple[Item, bool]:
        """Create the file `name` in a folder, or add a version to the existing one.

        Returns (item, created). `content` is taken over. conflict: fail (409 when the name
        exists), replace (a new version of the existing file; 409 if it is a folder), rename
        (`name 1.ext`). Other failures: DriveError 404 (no such folder), 400 (a name SharePoint
        refuses), 507 (quota)."""
        return self._commit(
            drive_id, content, stamp, parent_id=parent_id, name=name, conflict=conflict
        )

    def replace(self, drive_id: str, item_id: str, content: Content, stamp: Stamp) -> Item:
        """New content for an existing file: a new version, counted against the quota.

        `content` is taken over. DriveError 404 (no such item), 400 (a folder), 507 (quota)."""
        item, _ = self._commit(drive_id, content, stamp, item_id=item_id)
        return item

    def _commit(
        self,
        drive_id: str,
        content: Content,
        stamp: Stamp,
        *,
        item_id: str | None = None,
        parent_id: str | None = None,
        name: str | None = None,
        conflict: str = "fail",
    ) -> tuple[Item, bool]:
        """The one commit path: hooks, then the target decided and the bytes stored under the
        lock. Either `item_id` (replace that file) or `parent_id` and `name` (put)."""
        try:
            content = self._run_hooks(drive_id, item_id, name, content)
            items = self._items
            with self._db.lock:
                if item_id is not None:
                    existing = items.get(drive_id, item_id)
                    if existing is None:
                        raise not_found()
                    if existing.is_folder:
                        raise DriveError(
                            400, "invalidRequest", "Cannot upload content to a folder."
                        )
                    return self._new_version(existing, content, stamp), False
                assert parent_id is not None and name is not None
                parent = items.folder(drive_id, parent_id)
                items.check_new_name(parent, name, False)
                existing = items.child(drive_id, parent_id, name)
                if existing is not None:
                    if conflict == "rename":
                        name = items.free_name(drive_id, parent_id, name, False)
                    elif conflict == "replace" and not existing.is_folder:
                        return self._new_version(existing, content, stamp), False
                    else:
                        raise name_exists()
                return self._new_file(drive_id, parent_id, name, content, stamp), True
        finally:
            content.path.unlink(missing_ok=True)

    def _run_hooks(
        self, drive_id: str, item_id: str | None, name: str | None, content: Content
    ) -> Content:
        if not self._hooks:
            return content
        drive = self._drives(drive_id)
        if name is None and item_id is not None:
            existing = self._items.get(drive_id, item_id)
            name = existing.name if existing is not None else None
        if drive is None or name is None:
            return content  # the commit itself reports what is missing
        for hook in self._hooks:
            try:
                rewritten = hook(drive, name, content)
            except BaseException:
                content.path.unlink(missing_ok=True)
                raise
            if rewritten.path != content.path:
                content.path.unlink(missing_ok=True)
            content = rewritten
        return content

    def _store_bytes(self, drive_id: str, content: Content) -> str:
        """Check the quota and move the staged bytes into the content folder; returns the key."""
        self._versions.check_quota(drive_id, content.size)
        key = uuid.uuid4().hex
        os.replace(content.path, self.content_path(key))
        return key

    def _new_file(
        self, drive_id: str, parent_id: str, name: str, content: Content, stamp: Stamp
    ) -> Item:
        key = self._store_bytes(drive_id, content)
        item_id = new_item_id()
        now = time.time()
        with self._db.tx() as db:
            self._items.insert(
                db,
                item_id,
                drive_id,
                parent_id,
                name,
                False,
                stamp,
                now,
                size=content.size,
                qxh=content.qxh,
                content_key=key,
            )
            self._versions.add(db, drive_id, item_id, 1, content.size, key, now, stamp.by)
            self._items.grow(db, parent_id, content.size)
        item = self._items.get(drive_id, item_id)
        assert item is not None
        return item

    def _new_version(self, item: Item, content: Content, stamp: Stamp) -> Item:
        key = self._store_bytes(item.drive_id, content)
        now = time.time()
        with self._db.tx() as db:
            db.execute(
                "UPDATE items SET size = ?, qxh = ?, content_key = ?, etag_n = etag_n + 1,"
                " ctag_n = ctag_n + 1, version_n = version_n + 1, modified = ?,"
                " fs_created = COALESCE(?, fs_created), fs_modified = ?,"
                " modified_by = ?, seq = ? WHERE id = ?",
                (
                    content.size,
                    content.qxh,
                    key,
                    now,
                    stamp.fs_created,
                    stamp.fs_modified if stamp.fs_modified is not None else now,
                    json.dumps(stamp.by),
                    self._changes.next_seq(),
                    item.id,
                ),
            )
            self._versions.add(
                db, item.drive_id, item.id, item.version_n + 1, content.size, key, now, stamp.by
            )
            assert item.parent_id is not None
            self._items.grow(db, item.parent_id, content.size - item.size)
        updated = self._items.get(item.drive_id, item.id)
        assert updated is not None
        return updated
