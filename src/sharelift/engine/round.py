"""One round of one job: walk, plan, dispatch, finish.

    Engine.run
      start the round (state store)
      --verify-target: reconcile the state with the target's delta      reconcile.py
      make sure the job's target folder exists
      walk thread ──listings──► Dispatcher.plan, up to `folder_tasks`    dispatch.py
      (a second walk thread counts files and bytes ahead, for a display)
                                 ├─► FolderCreator: folders, 20 to a $batch    folders.py
                                 └─► the mover: files                          mover.py,
                                       (Graph by default: upload sessions)     graph_upload.py
      the mover finishes; after a complete round, stale sessions end, and
      --mirror deletes what the source lost                               reconcile.py
      save the counters (saver.py, every 2 s too), close the round

Every outcome goes through `Outcomes` (outcomes.py) into the state store and the round's one
`Tally`, from which the round's saved counters and its `RoundResult` are read.

Stopping: `request_stop()` (a first Ctrl-C) stops the walk; files in flight finish their
current fragment and keep their sessions; the round is `interrupted`. Cancelling `run()` (a
second Ctrl-C) stops at once: every task of the round is cancelled and still ends before the
round does, so none writes to the state store after it has closed; none starts a request
either. The cancellation is passed on at the end.

A cluster runs a round in parts (`run_part`, `engine/parts.py`): one sub-tree per unit of
work, under a round the job's first unit opened; the walk, planning and moving are the same.

Guarantees (DESIGN.md invariants): the source is read only (reader.py); an item is `done` only
once verified, target first, then state, then reports (outcomes.py); a re-run never uploads an
unchanged file again, costing no Graph request for it; an upload session is saved the moment it
exists and resumed or cancelled later (graph_session.py); memory is bounded: the walk streams,
every queue is bounded; all waiting on the service goes through the tenant's pacer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Generator
from dataclasses import dataclass

from sharelift.engine.config import EngineConfig
from sharelift.engine.dispatch import Dispatcher
from sharelift.engine.folders import FolderCreator
from sharelift.engine.graph_upload import GraphMover
from sharelift.engine.mover import Mover, MoverFactory, RoundContext
from sharelift.engine.outcomes import Outcomes
from sharelift.engine.parts import Carver, FolderPlace, Part
from sharelift.engine.reconcile import mirror_deletions, verify_target
from sharelift.engine.saver import RoundSaver
from sharelift.engine.tasks import wait_all
from sharelift.graph.drive import DriveClient
from sharelift.progress import Tally
from sharelift.source.pipeline import top
from sharelift.source.rules import TargetPrefix
from sharelift.source.walk import ScanOptions, walk_listings
from sharelift.state import JobRecord, RoundStatus, StateStore
from sharelift.target import ResolvedTarget

log = logging.getLogger("sharelift.engine")


@dataclass
class RoundResult:
    """What a round did, counted by item (files and folders)."""

    round_id: int
    status: RoundStatus
    uploaded: int = 0
    enriched: int = 0
    """Of those uploaded: Office files a library rewrote, proved part by part."""
    unverified: int = 0
    """Of those uploaded: files a library rewrote whose content was not compared."""
    adopted: int = 0
    """Files the target already held, byte for byte: recorded, not sent."""
    unchanged: int = 0
    skipped: int = 0
    """Left out by a filter, a rule or the conflict policy (blocked items included)."""
    failed: int = 0
    deleted: int = 0
    bytes_uploaded: int = 0
    stopped_by: str = ""
    """Why the round stopped before its end, when the target made it stop (a full drive)."""

    @classmethod
    def of(
        cls, round_id: int, status: RoundStatus, tally: Tally, stopped_by: str = ""
    ) -> RoundResult:
        return cls(
            round_id=round_id,
            status=status,
            uploaded=tally.uploaded,
            enriched=tally.enriched,
            unverified=tally.unverified,
            adopted=tally.adopted,
            unchanged=tally.unchanged,
            skipped=tally.skipped + tally.blocked,
            failed=tally.failed,
            deleted=tally.deleted,
            bytes_uploaded=tally.bytes_uploaded,
            stopped_by=stopped_by,
        )


class Engine:
    """One round of one job. Create, then `await run()`; `request_stop()` ends it early.

    `mover` makes the round's mover (default: the Graph mover, `GraphMover`); `log_path` is
    the log file the run writes, recorded with the round for its reports."""

    def __init__(
        self,
        *,
        drive: DriveClient,
        store: StateStore,
        job: JobRecord,
        source: str,
        target: ResolvedTarget,
        options: ScanOptions,
        config: EngineConfig,
        tally: Tally | None = None,
        mover: MoverFactory = GraphMover,
        log_path: str = "",
    ) -> None:
        self.drive = drive
        self.store = store
        self.job = job
        self.source = os.path.abspath(source)
        self.target = target
        self.options = options
        self.config = config
        self.tally = tally or Tally()
        self.stopping = asyncio.Event()
        self.stopped_by = ""
        """Why the target made the round stop (`halt`), "" otherwise."""
        self._make_mover = mover
        self._part: Part | None = None
        self._saver = RoundSaver(self.store, self.tally, self.drive.client.pacer)
        self._log_path = log_path
        self._stop_now = False
        """Set by a cancellation (a second stop signal): tasks are cancelled and clean up
        without requests."""

    def request_stop(self) -> None:
        """Stop taking new work; uploads in flight finish their current fragment and stop,
        their sessions kept for the next run to resume."""
        self.stopping.set()

    def halt(self, reason: str) -> None:
        """Stop as `request_stop` does, because the target cannot take more (`reason`, one
        line, becomes the result's `stopped_by`; the first reason is kept)."""
        self.stopped_by = self.stopped_by or reason
        self.request_stop()

    async def run(self) -> RoundResult:
        rnd = self.store.start_round(self.job.id, log_path=self._log_path)
        log.info(
            "job %d round %d started: %s -> %s (policy %s, workers %d%s%s)",
            self.job.id,
            rnd.number,
            self.source,
            self.target.web_url,
            self.config.policy,
            self.config.workers,
            ", mirror" if self.config.mirror else "",
            ", verify target" if self.config.verify_target else "",
        )
        outcomes = Outcomes(self.store, self.tally, self.job.id, rnd.id)
        status = RoundStatus.FAILED
        self._saver.save(rnd.id)  # the throughput chart's first sample: nothing done yet
        try:
            if self.config.verify_target:
                self.tally.phase = "verifying target"
                await verify_target(self.drive, self.store, outcomes, self.job.id, rnd.id)
            context = RoundContext(
                drive=self.drive,
                store=self.store,
                job=self.job,
                round_id=rnd.id,
                root_id=await self._ensure_root(),
                config=self.config,
                outcomes=outcomes,
                stopping=self.stopping,
                halt=self.halt,
                drive_type=self.target.drive_type,
            )
            mover = self._make_mover(context)
            self.tally.phase = "migrating"
            walk_ok = await self._walk(context, mover)
            if self.stopping.is_set():
                status = RoundStatus.INTERRUPTED
            else:
                await mover.release_stale()
                if self.config.mirror and walk_ok:
                    self.tally.phase = "mirroring deletions"
                    await mirror_deletions(self.drive, self.store, outcomes, self.job.id, rnd.id)
                status = RoundStatus.COMPLETED
        except asyncio.CancelledError:
            status = RoundStatus.INTERRUPTED
            raise
        finally:
            self._saver.save(rnd.id)
            self.store.finish_round(rnd.id, status)
            self.tally.phase = status
            t = self.tally
            log.log(
                logging.INFO if status == RoundStatus.COMPLETED else logging.WARNING,
                "job %d round %d %s: %d uploaded (%d bytes), %d already at the target, "
                "%d unchanged, %d skipped, %d failed, %d deleted",
                self.job.id,
                rnd.number,
                status,
                t.uploaded,
                t.bytes_uploaded,
                t.adopted,
                t.unchanged,
                t.skipped + t.blocked,
                t.failed,
                t.deleted,
            )
        return RoundResult.of(rnd.id, status, self.tally, self.stopped_by)

    async def run_part(self, part: Part) -> tuple[RoundResult, bool]:
        """Migrate one sub-tree of the job under the running round `part.round_id`, which
        others open and close (see `engine/parts.py`). Returns what it did (its status
        `completed` or `interrupted`) and whether every folder could be read and made.
        Stopping and cancelling work as for `run`."""
        self._part = part
        outcomes = Outcomes(self.store, self.tally, self.job.id, part.round_id)
        status = RoundStatus.FAILED
        walk_ok = False
        try:
            root_id = part.root_id or await self._ensure_root()
            context = RoundContext(
                drive=self.drive,
                store=self.store,
                job=self.job,
                round_id=part.round_id,
                root_id=root_id,
                config=self.config,
                outcomes=outcomes,
                stopping=self.stopping,
            )
            self.tally.phase = "migrating"
            walk_ok = await self._walk(context, self._make_mover(context))
            status = RoundStatus.INTERRUPTED if self.stopping.is_set() else RoundStatus.COMPLETED
        except asyncio.CancelledError:
            status = RoundStatus.INTERRUPTED
            raise
        finally:
            self.tally.phase = status
        return RoundResult.of(part.round_id, status, self.tally), walk_ok

    async def _ensure_root(self) -> str:
        """The target folder's id (created along its path when the user named a new one)."""
        if self.target.folder_id is not None:
            return self.target.folder_id
        parts = [p for p in self.target.folder.split("/") if p]
        parent = (await self.drive.get_root()).id
        for name in parts:
            parent = (await self.drive.create_folder(parent, name, existing_ok=True)).id
        return parent

    def _first_contact(self) -> bool:
        # A job that has never completed a round may meet files already at the target.
        return not any(r.status == RoundStatus.COMPLETED for r in self.store.rounds(self.job.id))

    async def _walk(self, context: RoundContext, mover: Mover) -> bool:
        """Walk, plan and move everything; True when every folder could be read and made."""
        folders = FolderCreator(self.drive, context.root_id)
        dispatcher = Dispatcher(
            context,
            source=self.source,
            options=self.options,
            prefix=TargetPrefix(self.target.library_path, at_library_root=not self.target.folder),
            folders=folders,
            mover=mover,
        )
        await mover.start()
        creator = asyncio.create_task(folders.run())
        progress = asyncio.create_task(
            self._saver.every(2.0, context.round_id, save=self._part is None)
        )
        part, carver = self._part, self._part.carver if self._part else None
        listings = walk_listings(
            self.source,
            self.options,
            start=part.parts if part else (),
            prune=carver.prune if carver else None,
        )
        halt_count = threading.Event()
        counting = None
        # Shown: count the totals ahead (a part's totals are its unit's, counted as it walks).
        if part is None and (self.tally.listening or self.tally.watched):
            counting = asyncio.create_task(
                asyncio.to_thread(count_ahead, self.source, self.options, self.tally, halt_count)
            )
        slots = asyncio.Semaphore(self.config.folder_tasks)
        tasks: set[asyncio.Task[None]] = set()
        carving: list[asyncio.Task[None]] = []
        walk_ok = True
        try:
            if part is None:
                dispatcher.start(first_contact=self._first_contact())
            else:
                place = part.folder or FolderPlace(top(dispatcher.prefix), context.root_id)
                listed = part.listed or self._first_contact()
                dispatcher.frontier.resolve(part.parts, place.target_folder(listed=listed))
            while not self.stopping.is_set():
                listing = await asyncio.to_thread(next, listings, None)
                if carver is not None:
                    carving += [
                        asyncio.create_task(self._carve(context, dispatcher, carver, parts))
                        for parts in carver.pruned()
                    ]
                if listing is None:
                    break
                if carver is not None:
                    carver.walked(listing)
                if listing.problem is not None:
                    walk_ok = False
                await slots.acquire()
                task = asyncio.create_task(dispatcher.plan(listing))
                tasks.add(task)
                task.add_done_callback(functools.partial(_finished, tasks, slots))
            self.tally.walk_complete = not self.stopping.is_set()
            if tasks:
                await asyncio.gather(*tasks)
            if carving:
                await asyncio.gather(*carving)
        except asyncio.CancelledError:
            self._stop_now = True
            raise
        finally:
            halt_count.set()
            await self._wind_down(mover, folders, creator, [progress, *tasks, *carving])
            if isinstance(listings, Generator):
                listings.close()
            if counting is not None:
                await asyncio.wait([counting])
        if self._stop_now:
            raise asyncio.CancelledError
        return walk_ok and not context.outcomes.failed_folders

    @staticmethod
    async def _carve(
        context: RoundContext, dispatcher: Dispatcher, carver: Carver, parts: tuple[str, ...]
    ) -> None:
        """Hand a folder left out of this walk to a unit of its own, once its parent's
        planning placed it and it exists at the target (or could not be made)."""
        folder = await dispatcher.frontier.take(parts)
        folder_id = await folder.ready
        await carver.carve(parts, FolderPlace.of(folder, folder_id), context.root_id)

    async def _wind_down(
        self,
        mover: Mover,
        folders: FolderCreator,
        creator: asyncio.Task[None],
        others: list[asyncio.Task[None]],
    ) -> None:
        """End every task of the round: gracefully (the mover settles what it took, queued
        folders are made), or at once after a cancellation, here or before."""

        def halt() -> None:
            self._stop_now = True
            mover.abort()
            creator.cancel()

        if self._stop_now:
            halt()
        failure: Exception | None = None
        try:
            await mover.finish()
        except asyncio.CancelledError:
            halt()
        except Exception as exc:  # a defect in the mover: end the rest first, then raise it
            failure = exc
        folders.close()
        await wait_all([creator], on_cancel=halt)
        for task in others:
            task.cancel()
        await wait_all(others, on_cancel=halt)
        if failure is not None:
            raise failure


def _finished(
    tasks: set[asyncio.Task[None]], slots: asyncio.Semaphore, task: asyncio.Task[None]
) -> None:
    tasks.discard(task)
    slots.release()


def count_ahead(source: str, options: ScanOptions, tally: Tally, halt: threading.Event) -> None:
    """Count SOURCE's files and bytes into `tally` (`counted_files`, `counted_bytes`, then
    `count_complete`), as the round's walk will list them: every child that is not a folder
    is one file the round settles. Runs on its own thread ahead of the planning walk, streams
    as it does (bounded memory) and stops when `halt` is set; a failure only ends the count."""
    listings = walk_listings(source, options)
    try:
        for listing in listings:
            if halt.is_set():
                return
            for child in listing.children:
                if not child.is_dir:
                    tally.counted_files += 1
                    tally.counted_bytes += child.size
        tally.count_complete = True
    except Exception:  # the round's own walk reports what is wrong with the source
        log.debug("counting ahead stopped", exc_info=True)
    finally:
        if isinstance(listings, Generator):
            listings.close()
