"""`ImportTarget` over the emulator's store: where the import worker puts folders and files.

The ids come from the store's own: a site id is `host,siteGuid,webGuid` (the web id is the
third part) and a library's drive id holds its list id (`store.list_id_of`). Folders and files
keep the package's unique ids (Graph's `sharepointIds.listItemUniqueId`), times and authors.
A file resubmitted with the same id replaces the earlier one with all its versions (sp-dev-docs
`docs/apis/migration-content-package.md`, "File overwriting"); a folder with a known id is
moved or renamed to where the package says.
"""

from __future__ import annotations

from sharelift.emulator.migration.target import Identity, ImportError_, Library, Placed
from sharelift.emulator.store import DriveError, Stamp, Store, list_id_of


class StoreTarget:
    """One site collection of the store, as the import worker sees it."""

    def __init__(self, store: Store, site_id: str) -> None:
        self.store = store
        self.site_id = site_id
        self.web_id = site_id.split(",")[2].lower()
        self._drives = [d.id for d in store.tenant.drives(site_id)]

    def library(self, list_id: str) -> Library | None:
        for drive_id in self._drives:
            if list_id_of(drive_id) == list_id:
                drive = self.store.tenant.drive(drive_id)
                root = self.store.items.get(drive_id, drive.root_id) if drive else None
                if root is None:
                    return None
                return Library(list_id, drive_id, root.id, root.guid.lower())
        return None

    def find(self, guid: str) -> Placed | None:
        item = self.store.items.by_unique_id(self._drives, guid)
        if item is None:
            return None
        return Placed(item.drive_id, item.id, item.is_folder)

    def user(self, upn: str) -> Identity | None:
        user = self.store.tenant.user(upn)
        if user is None:
            return None
        return {"user": {"id": user.id, "displayName": user.display_name, "email": user.upn}}

    def put_folder(
        self,
        drive_id: str,
        parent_item_id: str,
        guid: str,
        name: str,
        created: float | None,
        modified: float | None,
        author: Identity,
        editor: Identity,
    ) -> str:
        store = self.store
        try:
            existing = store.items.by_unique_id(self._drives, guid)
            if existing is not None and existing.drive_id == drive_id and existing.is_folder:
                item_id = existing.id
                if existing.parent_id != parent_item_id or existing.name != name:
                    store.edits.update(
                        drive_id, item_id, editor, name=name, parent_id=parent_item_id
                    )
            else:
                if existing is not None:
                    store.items.delete(existing.drive_id, existing.id)
                item, _ = store.folders.create(
                    drive_id, parent_item_id, name, "fail", Stamp(author, created, modified)
                )
                item_id = item.id
            store.items.set_origin(drive_id, item_id, guid, created, modified, author, editor)
        except DriveError as exc:
            raise ImportError_(exc.message) from exc
        return item_id

    def put_file(
        self,
        drive_id: str,
        parent_item_id: str,
        guid: str,
        name: str,
        data: bytes,
        created: float | None,
        modified: float | None,
        author: Identity,
        editor: Identity,
    ) -> str:
        store = self.store
        try:
            existing = store.items.by_unique_id(self._drives, guid)
            if existing is not None:
                store.items.delete(existing.drive_id, existing.id)
            content = store.files.stage([data])
            item, _ = store.files.put(
                drive_id, parent_item_id, name, content, "fail", Stamp(author, created, modified)
            )
            store.items.set_origin(drive_id, item.id, guid, created, modified, author, editor)
        except DriveError as exc:
            raise ImportError_(exc.message) from exc
        return item.id


def target_for_site(store: Store, site_id: str) -> StoreTarget | None:
    """The import target for `site_id`, or None when the site is gone."""
    return StoreTarget(store, site_id) if store.tenant.site(site_id) is not None else None
