"""Replacing or deleting a file SharePoint refuses to replace or delete: move it aside first.

In a SharePoint library, replacing or deleting an Office or web file (docx, xlsx, aspx, html,
...) may fail with 404 itemNotFound although the file is there (OneDrive/onedrive-api-docs#1068:
the createUploadSession succeeds, the bytes are refused); rclone's OneDrive docs ("Replacing/
deleting existing files on Sharepoint gets "item not found"") suggest moving the old file aside
first (`--backup-dir`): a rename is not refused. So, when the bytes that would replace a file
are refused while its upload session is still there (`ReplaceRefused`):

    1. the old file is recorded in the state store (`save_moved_aside`: its id, which a rename
       keeps, its folder, its name and the name it goes to), then renamed aside
       (`name.sharelift-N.old`, an extension SharePoint does not refuse);
    2. the new file is sent under the freed name, as a new file;
    3. once it is done, the old one is deleted (its new name is not refused) and the record
       dropped; if the new one fails for good, the old one is put back under its name.

Neither version is lost at any point, and a run stopped anywhere is repaired by the next one,
before it plans (`repair`): an old file whose replacement was recorded done is deleted; any
other is put back under its name when that is free (and kept aside, recorded, when the new
file holds the name already: the plan then adopts or replaces that one, and the old is deleted
once it is done). A mirrored deletion refused the same way renames the file aside and deletes
it then (`delete_refused`).
"""

from __future__ import annotations

import contextlib

from sharelift.engine.mover import RoundContext
from sharelift.graph.drive import DriveClient
from sharelift.graph.errors import Conflict, GraphError, NotFound
from sharelift.state import ItemStatus, MovedAside, StateStore


class ReplaceRefused(Exception):
    """SharePoint refused the bytes that would replace a file: 404 itemNotFound while the file
    and the upload session are both there."""


def aside_name(name: str, row: int) -> str:
    """The name a file goes aside to: its own, tagged, with an extension SharePoint does not
    refuse to delete; a short one when that would pass the 255-character limit."""
    tagged = f"{name}.sharelift-{row}.old"
    return tagged if len(tagged) <= 255 else f"sharelift-{row}.old"


async def _rename_aside(drive: DriveClient, store: StateStore, aside: MovedAside) -> None:
    store.save_moved_aside(aside)  # before the rename: the id is known, the next run finds it
    await drive.update_item(aside.item_id, name=aside.aside_name)


class MovedAsideFiles:
    """The files of one round moved aside while replaced (see the module docstring)."""

    def __init__(self, context: RoundContext) -> None:
        self.context = context
        self._rows: set[int] = set()

    async def repair(self) -> None:
        """Settle what earlier runs left aside (before this round plans anything)."""
        store = self.context.store
        for aside in store.moved_aside_of_job(self.context.job.id):
            row = store.item_by_row(aside.item_row)
            if row is not None and row.status == ItemStatus.DONE and row.item_id != aside.item_id:
                await self._delete(aside)
            elif not await self._put_back(aside):
                self._rows.add(aside.item_row)

    async def move_aside(self, row: int, item_id: str, parent_id: str, name: str) -> None:
        """Rename the file `item_id` (named `name` in `parent_id`) aside, recorded first."""
        aside = MovedAside(row, item_id, parent_id, name, aside_name(name, row))
        await _rename_aside(self.context.drive, self.context.store, aside)
        self._rows.add(row)

    def holds(self, row: int) -> bool:
        """True when the row's old file is aside in this round."""
        return row in self._rows

    async def settled(self, row: int) -> None:
        """The row's new file is done: delete its old one, moved aside."""
        if row in self._rows:
            aside = self.context.store.moved_aside(row)
            if aside is not None:
                await self._delete(aside)
            self._rows.discard(row)

    async def failed(self, row: int) -> None:
        """The row's new file failed for good: its old one goes back under its name."""
        if row in self._rows:
            aside = self.context.store.moved_aside(row)
            if aside is None or await self._put_back(aside):
                self._rows.discard(row)

    async def _delete(self, aside: MovedAside) -> None:
        with contextlib.suppress(GraphError):  # the next run tries again
            await self.context.drive.delete_item(aside.item_id, missing_ok=True)
            self.context.store.drop_moved_aside(aside.item_row)

    async def _put_back(self, aside: MovedAside) -> bool:
        """True when the old file is back under its name (or gone: nothing to keep)."""
        try:
            await self.context.drive.update_item(aside.item_id, name=aside.name)
        except NotFound:
            pass  # someone deleted it: nothing left to put back
        except Conflict:
            return False  # the name holds the new file: the old one stays aside, recorded
        except GraphError:
            return False
        self.context.store.drop_moved_aside(aside.item_row)
        return True


async def delete_refused(drive: DriveClient, store: StateStore, row: int, item_id: str) -> bool:
    """After a DELETE of `item_id` answered 404: True when the file is really gone. When it is
    still there (SharePoint refused the deletion), it is renamed aside (recorded) and deleted
    under that name; GraphError when that fails too."""
    try:
        item = await drive.get_item(item_id)
    except NotFound:
        return True
    parent = item.parent.id if item.parent else None
    aside = MovedAside(
        row, item_id, parent or "", item.name or "", aside_name(item.name or "", row)
    )
    await _rename_aside(drive, store, aside)
    await drive.delete_item(item_id, missing_ok=True)
    store.drop_moved_aside(row)
    return True
