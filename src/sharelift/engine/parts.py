"""A round in parts: one sub-tree of a job per unit of work, on the machines of a cluster.

`Engine.run_part(part)` migrates the sub-tree `part` describes under a round that its job's
first unit opened (and that the round's last unit closes: `sharelift.cluster`). It walks
from the sub-tree's folder, whose place at the target is known already (`Part.folder`), and
its `Carver` may hand folders of the walk to units of their own:

    walk thread ── prune(parts)? ──► the folder is left out of this walk (its turn came)
    event loop  ── walked(listing)   counts what the part has taken on
                ── carve(parts, folder), once the folder's parent was planned and the folder
                   exists at the target (or could not be made): record it as a unit
                   (with the job's target folder: `Part.root_id` of the unit it becomes)

A part does not reconcile with the target (--verify-target), mirror deletions or end stale
upload sessions: the round's last unit does, once for the whole job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sharelift.engine.folders import TargetFolder
from sharelift.source.pipeline import Parent
from sharelift.source.walk import Listing


@dataclass(frozen=True)
class FolderPlace:
    """Where a folder of the source stands at the target, as planning its parent decided."""

    parent: Parent
    """Where its children go: their target folder path below the job's, or None (not
    migrated), and the length of that path."""
    folder_id: str | None
    """Its driveItem id (None: it is not there)."""
    lost: bool = False
    """It lies below a folder that could not be created: everything in it fails."""
    listed: bool = False
    """What it holds at the target is listed before planning (first contact)."""

    @classmethod
    def of(cls, folder: TargetFolder, folder_id: str | None) -> FolderPlace:
        return cls(folder.parent, folder_id, folder.lost, folder.listed)

    def target_folder(self, *, listed: bool) -> TargetFolder:
        """The folder as the round's frontier holds it (listed when it was, or `listed`)."""
        if self.lost:
            return TargetFolder.lost_below()
        return TargetFolder.known(self.parent, self.folder_id, listed=listed or self.listed)


class Carver(Protocol):
    """Decides which folders of a part's walk become units of their own, and records them."""

    def prune(self, parts: tuple[str, ...]) -> bool:
        """Called on the walk's thread when the folder `parts` is next: True leaves it (and
        all below it) to a unit of its own."""

    def pruned(self) -> list[tuple[str, ...]]:
        """The folders left out since the last call (on the event loop, between listings)."""

    def walked(self, listing: Listing) -> None:
        """The part took on this listing (on the event loop)."""

    async def carve(self, parts: tuple[str, ...], place: FolderPlace, root_id: str) -> None:
        """Record the folder `parts`, whose place at the target is now known, as a unit
        (`root_id`: the job's target folder, which the unit needs too)."""


@dataclass(frozen=True)
class Part:
    """A sub-tree of a job that one run of the engine covers (a cluster's unit of work)."""

    round_id: int
    """The job's round, opened by the job's first unit."""
    parts: tuple[str, ...] = ()
    """Its folder below the job's source (() for the whole tree)."""
    folder: FolderPlace | None = None
    """Where that folder stands at the target; None for the whole tree (the job's folder)."""
    root_id: str | None = None
    """The job's target folder (None: made sure of first, as a whole round does)."""
    listed: bool = False
    """List each target folder before planning (first contact, or a part taken over from a
    worker that died, whose last files may be at the target unrecorded)."""
    carver: Carver | None = None


@dataclass
class Budget:
    """How much one part takes on before the folders it has not reached yet become units of
    their own: `files` files or `size` bytes met in its listings (unchanged ones too: walking
    them costs time). `carved` holds folders that are units already (an earlier owner of the
    part carved them): they are always left out."""

    files: int
    size: int
    carved: set[tuple[str, ...]] = field(default_factory=set)
    seen_files: int = 0
    seen_bytes: int = 0

    @property
    def spent(self) -> bool:
        return self.seen_files >= self.files or self.seen_bytes >= self.size

    def prune(self, parts: tuple[str, ...]) -> bool:
        return self.spent or parts in self.carved

    def walked(self, listing: Listing) -> None:
        for child in listing.children:
            if not child.is_dir:
                self.seen_files += 1
                self.seen_bytes += child.size
