"""Removing the versions older than a file's current one at the target.

OneDrive for Business and SharePoint keep a version of a file on every change, each counted
against the site's quota (rclone offers `--onedrive-no-versions` and `cleanup` for it). A
file migrated again after it changed at the source makes one more; `remove_old_versions`
removes the older ones right after the replacement, and `sharelift versions prune` (the
library side is `sharelift.prune`) removes them under a whole target folder. Both go through
the tenant's Graph client, so its pacer paces them. See `graph/versions.py` for what Graph
allows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sharelift.graph.drive import DriveClient
from sharelift.graph.errors import GraphError
from sharelift.graph.types import DriveItemVersion

log = logging.getLogger("sharelift.versions")


@dataclass(frozen=True)
class Pruned:
    """What removing one file's old versions did (or, in a dry run, would do)."""

    versions: int = 0
    bytes: int = 0


def _number(version: DriveItemVersion) -> tuple[int, ...]:
    """A version label as numbers ("3.0" -> (3, 0)); () when it is not one."""
    try:
        return tuple(int(part) for part in version.id.split("."))
    except ValueError:
        return ()


async def prune_versions(
    drive: DriveClient, item_id: str, *, current_size: int | None = None, dry_run: bool = False
) -> Pruned:
    """Remove every version of the file `item_id` older than its current one (the highest
    version number: SharePoint labels them 1.0, 2.0, ...). With `current_size`, nothing is
    removed unless the current version has that size: a version someone wrote after ours must
    not turn ours into an "older" one to delete. Raises GraphError."""
    versions = await drive.list_versions(item_id)
    if len(versions) < 2:
        return Pruned()
    current = max(versions, key=_number)
    if current_size is not None and current.size != current_size:
        log.info("not pruning %s: its current version is not the one written", item_id)
        return Pruned()
    older = [v for v in versions if v is not current]
    for version in older:
        if not dry_run:
            await drive.delete_version(item_id, version.id)
    return Pruned(len(older), sum(v.size or 0 for v in older))


async def try_prune(drive: DriveClient, item_id: str, current_size: int | None) -> bool:
    """`prune_versions`, a failure logged (the next run tries again); True when done."""
    try:
        await prune_versions(drive, item_id, current_size=current_size)
    except GraphError as exc:
        log.warning("could not remove the older versions of %s: %s", item_id, exc)
        return False
    return True
