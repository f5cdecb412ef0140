"""`sharelift versions prune TARGET`: remove the versions older than the current one of every file
under a target folder (each version counts against the site's quota).

The folder is listed a page at a time (one request per page of children, folders below it in
turn); each file's versions are listed and the older ones deleted (`engine/versions.py`), up
to `workers` files at once, all through the tenant's Graph client and its pacer. The files done
are recorded in the state store under the folder's key after each page, so a run that stops
(Ctrl-C, a kill, an error) resumes where it was: the next run skips them. A complete run
forgets them, so that the run after it looks at every file again. A dry run deletes nothing
and writes nothing; it says what would go.

Memory: a page of children and the ids of the folders still to list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from sharelift.engine.versions import Pruned, prune_versions
from sharelift.graph.client import GraphClient
from sharelift.graph.drive import DriveClient
from sharelift.graph.errors import GraphError
from sharelift.graph.types import DriveItem
from sharelift.state import StateStore
from sharelift.target import TargetSpec, resolve_target


@dataclass
class PruneResult:
    """What a prune did (or, in a dry run, would do)."""

    target: str
    files: int = 0
    """Files looked at (those a resumed run had done already included)."""
    resumed: int = 0
    """Files skipped: an earlier, stopped run had pruned them."""
    pruned_files: int = 0
    """Files that had older versions."""
    versions: int = 0
    """Older versions removed."""
    bytes: int = 0
    """Their bytes, freed from the site's quota (moved to its recycle bin)."""
    failed: int = 0
    dry_run: bool = False
    stopped: bool = False
    """Stopped before the end (`stop`): the next run resumes."""


async def prune_target(
    client: GraphClient,
    spec: TargetSpec,
    store: StateStore | None,
    *,
    dry_run: bool = False,
    workers: int = 8,
    say: Callable[[str], None] = lambda line: None,
    stop: asyncio.Event | None = None,
) -> PruneResult:
    """Prune every file under the folder `spec` names (see the module docstring). `store` is
    where progress is kept (None only for a dry run). `say` hears a line per file with older
    versions and per failure. Setting `stop` ends the run after the page in hand (`stopped`).
    Raises TargetError when the folder does not exist."""
    target = await resolve_target(client, spec)
    drive = DriveClient(client, target.drive_id)
    result = PruneResult(target.web_url, dry_run=dry_run)
    top = target.folder_id or (await drive.get_root()).id
    key = f"{target.drive_id}\n{target.folder.lower()}"
    gate = asyncio.Semaphore(max(1, workers))

    async def one(item: DriveItem) -> bool:
        async with gate:
            try:
                pruned = await prune_versions(drive, item.id, dry_run=dry_run)
            except GraphError as exc:
                result.failed += 1
                say(f"failed  {item.name}: {exc}")
                return False
        _count(result, item, pruned, say)
        return True

    folders = [top]
    while folders:
        folder = folders.pop()
        page: list[DriveItem] = []
        async for child in drive.list_children(folder):
            if child.is_folder:
                folders.append(child.id)
            elif child.is_file:
                page.append(child)
            if len(page) >= 200:
                await _prune_page(page, store, key, dry_run, result, one)
                page = []
            if stop is not None and stop.is_set():
                result.stopped = True
                return result
        if page:
            await _prune_page(page, store, key, dry_run, result, one)
    if store is not None and not dry_run and result.failed == 0:
        store.forget_pruned(key)
    return result


async def _prune_page(
    page: list[DriveItem],
    store: StateStore | None,
    key: str,
    dry_run: bool,
    result: PruneResult,
    one: Callable[[DriveItem], Coroutine[Any, Any, bool]],
) -> None:
    ids = [item.id for item in page]
    done = store.pruned_among(key, ids) if store is not None else set()
    result.files += len(page)
    result.resumed += len(done)
    todo = [item for item in page if item.id not in done]
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(item)) for item in todo]
    if store is not None and not dry_run:
        store.record_pruned(
            key, [item.id for item, t in zip(todo, tasks, strict=True) if t.result()]
        )
        store.flush()


def _count(
    result: PruneResult, item: DriveItem, pruned: Pruned, say: Callable[[str], None]
) -> None:
    if not pruned.versions:
        return
    result.pruned_files += 1
    result.versions += pruned.versions
    result.bytes += pruned.bytes
    verb = "would remove" if result.dry_run else "removed"
    say(f"{verb} {pruned.versions} older version(s), {pruned.bytes} bytes: {item.name}")


__all__ = ["PruneResult", "prune_target"]
