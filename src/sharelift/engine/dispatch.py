"""Planning each folder of the walk, and handing each planned item to whoever acts on it.

For one listing, `Dispatcher.plan` waits until the folder's place at the target is known (its
parent's planning said where it goes; it exists there, or could not be made), reads what the
state store knows of its children (one query per folder) and, on first contact only, what the
target folder holds (one listing), runs the planning pipeline (`source/pipeline.py`), then:

    SKIP_UNCHANGED          marked seen (one write for the folder when all its known items
                            are unchanged: a re-run's usual case); no Graph request
    FOLDER_KNOWN            its id is known: its children can be planned at once
    CREATE_FOLDER           queued for the folder creator (20 to a $batch)
    UPLOAD, ADOPT_IF_SAME   submitted to the mover
    anything else           recorded as not migrated (a rule, a filter, a problem)

A folder that could not be created takes its whole subtree with it (PARENT_NOT_CREATED,
failed); what lies in a folder that is not migrated is planned like anything else, and is not
migrated either. Each subfolder the walk will list is resolved in the frontier, so that its
own listing never waits for ever.
"""

from __future__ import annotations

import functools
import os

from sharelift.engine.folders import (
    FolderCreator,
    Frontier,
    TargetFolder,
    list_target_folder,
)
from sharelift.engine.mover import FileWork, Mover, RoundContext
from sharelift.graph.errors import GraphError
from sharelift.graph.types import DriveItem
from sharelift.plan import Action, Planned
from sharelift.progress import Outcome
from sharelift.source.pipeline import named, parent_of_folder, plan_listing, top
from sharelift.source.rules import TargetPrefix
from sharelift.source.walk import Listing, ScanOptions
from sharelift.state import ItemStatus


class Dispatcher:
    """Plans the listings of one round (see the module docstring)."""

    def __init__(
        self,
        context: RoundContext,
        *,
        source: str,
        options: ScanOptions,
        prefix: TargetPrefix,
        folders: FolderCreator,
        mover: Mover,
    ) -> None:
        self.context = context
        self.source = source
        self.options = options
        self.prefix = prefix
        self.folders = folders
        self.mover = mover
        self.frontier = Frontier()

    def start(self, *, first_contact: bool) -> None:
        """The top folder (SOURCE's place: the job's target folder) is known; with
        `first_contact`, what the target holds there is listed before planning."""
        root = TargetFolder.known(top(self.prefix), self.context.root_id, listed=first_contact)
        self.frontier.resolve((), root)

    async def plan(self, listing: Listing) -> None:
        """Plan one listing and hand its items over; returns once every item is handed over
        (a mover or the folder creator may make it wait: backpressure)."""
        context, outcomes = self.context, self.context.outcomes
        folder = await self.frontier.take(listing.parts)
        parent_path = os.fsencode("/".join(listing.parts))
        if listing.problem is not None:  # it cannot be listed: nothing in it is known
            if folder.parent.target is not None and not folder.lost:
                outcomes.folder_unreadable(parent_path, listing.problem.value, listing.detail or "")
            return
        folder_id = await folder.ready
        if folder.lost or (folder_id is None and folder.parent.target is not None):
            self._orphan(listing)
            return
        state = context.store.children(context.job.id, parent_path)
        remote = None
        if folder_id is not None and folder.listed:
            remote = await list_target_folder(context.drive, folder_id)
        plans = plan_listing(
            listing,
            folder.parent,
            rename=self.options.rename,
            prefix=self.prefix,
            state=state,
            remote=remote,
            policy=context.config.policy,
        )
        tally = outcomes.tally
        listening = tally.listening
        unchanged = unchanged_bytes = 0
        seen: list[int] = []
        for plan in plans:
            action = plan.action
            if action is Action.SKIP_UNCHANGED:
                assert plan.state is not None
                seen.append(plan.state.id)
                if listening:
                    tally.finished(
                        plan.item.relpath, Outcome.UNCHANGED, plan.item.size, "unchanged"
                    )
                else:
                    unchanged += 1
                    unchanged_bytes += plan.item.size
            elif action is Action.FOLDER_KNOWN:
                self._known_folder(plan, folder, seen)
            elif action is Action.CREATE_FOLDER:
                await self._new_folder(plan)
            elif action is Action.UPLOAD or action is Action.ADOPT_IF_SAME:
                tally.found(1, plan.item.size)
                row = outcomes.pending(plan)
                source = os.path.join(self.source, *plan.item.parts)
                await self.mover.submit(FileWork(plan, row, folder, source))
            else:
                outcomes.not_migrated(plan)
                if plan.item.is_dir and named(plan.item):  # the walk will still list it
                    self.frontier.resolve(
                        plan.item.parts, TargetFolder.known(parent_of_folder(plan), None)
                    )
        if unchanged:
            tally.unchanged_files(unchanged, unchanged_bytes)
        if seen and len(seen) == len(state):
            # Every item known in this folder is still there, unchanged (a re-run's usual case).
            context.store.mark_folder_seen(context.job.id, parent_path, context.round_id)
        elif seen:
            context.store.mark_seen(seen, context.round_id)

    def _known_folder(self, plan: Planned, parent: TargetFolder, seen: list[int]) -> None:
        state = plan.state
        known = state.item_id if state is not None and state.item_id else None
        known = plan.remote.id if plan.remote is not None else known
        done = state is not None and state.status == ItemStatus.DONE
        child = TargetFolder.known(parent_of_folder(plan), known, listed=parent.listed or not done)
        self.frontier.resolve(plan.item.parts, child)
        if done:
            assert state is not None
            seen.append(state.id)  # nothing changed: no write but "seen"
        elif known is not None:
            self.context.outcomes.folder_found(plan, known)

    async def _new_folder(self, plan: Planned) -> None:
        child = TargetFolder.pending(parent_of_folder(plan))
        self.frontier.resolve(plan.item.parts, child)
        row = self.context.outcomes.pending(plan)
        settled = functools.partial(self._folder_settled, row, plan)
        await self.folders.put(plan.target_relpath or "", child, settled)

    def _folder_settled(self, row: int, plan: Planned, result: DriveItem | GraphError) -> None:
        if isinstance(result, DriveItem):
            self.context.outcomes.folder_created(row, plan, result.id)
        else:
            self.context.outcomes.folder_failed(row, plan, result)

    def _orphan(self, listing: Listing) -> None:
        """The folder could not be created (or one above it could not): everything in it
        fails with it; its subfolders are still listed by the walk, and fail in turn."""
        for item in listing.children:
            self.context.outcomes.orphaned(item)
            if item.is_dir and named(item):
                self.frontier.resolve(item.parts, TargetFolder.lost_below())
