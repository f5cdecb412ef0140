"""Folders on their way to the target: where each goes, when it exists, and their creation.

- `TargetFolder`: a source folder as the round knows it: where its children go (`parent`),
  its driveItem id once it exists there (`ready`), and whether its children at the target must
  be listed before planning (first contact).
- `Frontier`: the folders the walk will list next, each resolved by its parent's planning.
  An entry lives from the parent's listing to the folder's own: the walk's frontier, bounded
  as the walk is.
- `FolderCreator`: creates new folders 20 to a `$batch` (through a `Coalescer`, with a
  bounded queue, so that a tree of many small folders does not pile up in memory), always
  addressed below the job's target folder. A folder's parent exists before the folder is
  queued: its children are planned only once it is ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from sharelift.graph.client import MAX_BATCH
from sharelift.graph.coalesce import Coalescer
from sharelift.graph.drive import DriveClient
from sharelift.graph.errors import GraphError
from sharelift.graph.types import DriveItem
from sharelift.plan import RemoteItem
from sharelift.source.pipeline import Parent


@dataclass(eq=False)
class TargetFolder:
    """A source folder on its way to the target."""

    parent: Parent
    """Where its children go: its target path (None when it is not migrated) and length."""
    ready: asyncio.Future[str | None]
    """Its driveItem id once it exists at the target; None when it is not there (not
    migrated, or it could not be created: then its children fail)."""
    listed: bool = False
    """True when its children at the target must be listed before planning (first contact)."""
    lost: bool = False
    """True for a folder below one that could not be created: everything in it fails."""

    @classmethod
    def known(cls, parent: Parent, item_id: str | None, *, listed: bool = False) -> TargetFolder:
        """A folder whose id is known now (None: not there)."""
        ready: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        ready.set_result(item_id)
        return cls(parent, ready, listed)

    @classmethod
    def pending(cls, parent: Parent) -> TargetFolder:
        """A folder that is still to be created."""
        return cls(parent, asyncio.get_running_loop().create_future())

    @classmethod
    def lost_below(cls) -> TargetFolder:
        """A folder below one that could not be created."""
        folder = cls.known(Parent(None, 0), None)
        folder.lost = True
        return folder


def remote_item(item: DriveItem) -> RemoteItem:
    """What planning needs of an item at the target."""
    fsi = item.file_system_info
    return RemoteItem(
        id=item.id,
        name=item.name or "",
        is_folder=item.is_folder,
        size=item.size or 0,
        quick_xor=item.quick_xor_hash,
        modified=(fsi.last_modified if fsi is not None else None) or item.last_modified,
        etag=item.etag,
    )


async def list_target_folder(drive: DriveClient, folder_id: str) -> dict[str, RemoteItem]:
    """What a folder at the target holds, by lower-cased name (SharePoint's names are
    case-insensitive)."""
    return {
        there.name.lower(): remote_item(there)
        async for there in drive.list_children(folder_id)
        if there.name
    }


class Frontier:
    """The folders the walk will list, by their source path parts, each resolved (by its
    parent's planning) to a `TargetFolder` before its own listing is planned."""

    def __init__(self) -> None:
        self._folders: dict[tuple[str, ...], asyncio.Future[TargetFolder]] = {}

    def _entry(self, parts: tuple[str, ...]) -> asyncio.Future[TargetFolder]:
        entry = self._folders.get(parts)
        if entry is None:
            entry = self._folders[parts] = asyncio.get_running_loop().create_future()
        return entry

    def resolve(self, parts: tuple[str, ...], folder: TargetFolder) -> None:
        """The parent's planning says where folder `parts` goes."""
        self._entry(parts).set_result(folder)

    async def take(self, parts: tuple[str, ...]) -> TargetFolder:
        """The folder `parts`, once its parent's planning resolved it; the entry is dropped."""
        folder = await self._entry(parts)
        del self._folders[parts]
        return folder


FolderSettled = Callable[[DriveItem | GraphError], None]
"""Told what became of one folder: the driveItem made (or found), or why it could not be."""


class FolderCreator:
    """Creates the round's new folders, 20 to a `$batch`, while the walk goes on.

    `await put(path, folder, settled)` queues a folder (`path` below the job's target folder);
    it waits while `capacity` folders are queued. `run()` creates them until `close()`; each
    folder's `settled` is told what became of it, then its `ready` gets its id (and `listed`
    is set when it already held children: first contact), or None when it could not be made.
    """

    def __init__(self, drive: DriveClient, root_id: str, *, capacity: int = 4 * MAX_BATCH) -> None:
        self.drive = drive
        self.root_id = root_id
        # Siblings are queued together; a group waits 2 ms for the rest of them.
        self._queue: Coalescer[tuple[str, TargetFolder, FolderSettled]] = Coalescer(
            linger=0.002, capacity=capacity
        )

    async def put(self, path: str, folder: TargetFolder, settled: FolderSettled) -> None:
        await self._queue.put((path, folder, settled))

    def close(self) -> None:
        """No more folders: `run()` creates those queued, then returns."""
        self._queue.close()

    async def run(self) -> None:
        async for group in self._queue.groups():
            try:
                results = await self.drive.create_folders(
                    [path for path, _, _ in group], under=self.root_id, existing_ok=True
                )
            except GraphError as exc:
                results = [exc] * len(group)
            for (_, folder, settled), result in zip(group, results, strict=True):
                settled(result)
                if isinstance(result, DriveItem):
                    # A folder that already had children at the target is met for the first
                    # time: list it before planning what goes in.
                    folder.listed = bool(result.folder_child_count)
                    folder.ready.set_result(result.id)
                else:
                    folder.ready.set_result(None)
