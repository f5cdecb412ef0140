"""Reconciling the state store with the target: --verify-target before a round, --mirror after.

`verify_target` streams the target drive's delta (https://learn.microsoft.com/graph/api/
driveitem-delta) and looks each page's items up in the state store by their driveItem id (one
query per page, through an index), marking those it finds: a done file whose hash changed at the
target is no longer done (skipped, TARGET_CHANGED), and neither is every done item left
unmarked at the end, gone from the target (TARGET_MISSING); the round then uploads them again
from the source, and one gone from the source too stays skipped with that reason (nothing is
left to migrate: not a failure). Memory holds one page, whatever the size of the job (DESIGN.md
invariant 5).

`mirror_deletions` moves to the target's recycle bin what the round's walk no longer saw at the
source, highest folders first (their content goes with them), never below a folder this round
could not read or create: absence there proves nothing. A deletion SharePoint refuses (404
although the file is there) renames the file aside first (`engine/aside.py`).
"""

from __future__ import annotations

from sharelift.engine.aside import delete_refused
from sharelift.engine.outcomes import Outcomes
from sharelift.graph.drive import DriveClient
from sharelift.graph.errors import GraphError, NotFound
from sharelift.state import ItemStatus, StateStore

_AGAIN = "{} at the target since it was migrated; migrated again if the source still has it"


async def verify_target(
    drive: DriveClient, store: StateStore, outcomes: Outcomes, job_id: int, round_id: int
) -> None:
    """Un-done the job's done items that changed at the target or are gone from it."""
    async for page in drive.delta():
        present = {entry.id: entry for entry in page.items if not entry.deleted}
        if not present:
            continue
        found = store.done_at_target(job_id, list(present))
        store.mark_at_target([known.id for known in found], round_id)
        for known in found:
            if known.kind == "file" and present[known.item_id].quick_xor_hash != known.quick_xor:
                outcomes.target_lost(known.id, "TARGET_CHANGED", _AGAIN.format("changed"))
    for known in store.done_not_at_target(job_id, round_id):
        outcomes.target_lost(known.id, "TARGET_MISSING", _AGAIN.format("deleted"))


async def mirror_deletions(
    drive: DriveClient, store: StateStore, outcomes: Outcomes, job_id: int, round_id: int
) -> None:
    """Delete at the target what was deleted at the source since the last round."""
    gone = [
        item
        for item in store.unseen_since(job_id, round_id)
        if item.item_id
        and item.status == ItemStatus.DONE
        and not outcomes.under_failed_folder(item.path)
    ]
    # Delete the highest folders only: their contents go with them.
    gone.sort(key=lambda i: i.path)
    deleted_prefixes: list[bytes] = []
    for item in gone:
        if any(item.path.startswith(p + b"/") for p in deleted_prefixes):
            outcomes.deleted(
                item.id,
                item.display_path,
                "deleted at the source; removed with its folder",
                counted=False,
                folder=item.kind == "folder",
            )
            continue
        assert item.item_id is not None
        try:
            try:
                await drive.delete_item(item.item_id)
            except NotFound:
                # Gone already, or a deletion SharePoint refused (an Office or web file in a
                # library): then it goes aside, and is deleted there.
                await delete_refused(drive, store, item.id, item.item_id)
        except GraphError as exc:
            outcomes.delete_failed(item.id, exc)
            continue
        if item.kind == "folder":
            deleted_prefixes.append(item.path)
        outcomes.deleted(
            item.id,
            item.display_path,
            "deleted at the source; moved to the target's recycle bin",
            counted=True,
            folder=item.kind == "folder",
        )
