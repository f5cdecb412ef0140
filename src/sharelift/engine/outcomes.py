"""The one way an item's outcome is verified, written to the state store and counted.

Every part of a round that settles an item goes through `Outcomes`: the planning of a folder
(unchanged, not migrated), the folder creator, and the movers. So the rules hold in one place:

- An item is `done` only after Graph returned it and, for a file, its quickXorHash equals the
  hash of the bytes that were read (`arrived`; DESIGN.md invariant 2), or a library rewrote
  the file as it stored it and the mover settled it by the check the configuration allows
  (`enriched`: its Office package proved part by part, or, with the proof off or impossible,
  the upload having taken every byte). The target is written first (by the mover), the state
  second (here), the reports last (after the round).
- Every outcome updates the round's one `Tally`, which the progress display, the round's saved
  counters and its result all read.
- The folders that failed or were refused this round are remembered (`failed_folders`): what
  lies below them fails with them, and `--mirror` deletes nothing under them.
- Every failure is logged (WARNING, with its code and reason); every other outcome at DEBUG.
"""

from __future__ import annotations

import logging
import os
from typing import Protocol

from sharelift.graph.errors import GraphError
from sharelift.graph.types import DriveItem
from sharelift.plan import Action, Planned, RemoteItem
from sharelift.progress import Outcome, Tally
from sharelift.source.walk import WalkItem, WalkProblem
from sharelift.state import ItemStatus, StateStore, VerifiedBy

log = logging.getLogger("sharelift.engine")

HASH_MISMATCH = "HASH_MISMATCH"
NOT_VERIFIED = "NOT_VERIFIED"
"""The note code of a file a library rewrote and whose content was not compared (the reports'
"Migrated, not verified")."""
ENRICHED_DETAIL = "verified; SharePoint added its metadata"
PARENT_NOT_CREATED = "PARENT_NOT_CREATED"
"""The code of an item whose folder could not be created at the target (a failure, unlike
PARENT_NOT_MIGRATED: a folder above it left out by a rule or a filter, which is a skip)."""

_NOT_MIGRATED = {
    Action.BLOCK: Outcome.BLOCKED,
    Action.SKIP_RULE: Outcome.SKIPPED,
    Action.SKIP_FILTERED: Outcome.SKIPPED,
    Action.SKIP_TARGET_NEWER: Outcome.SKIPPED,
    Action.SKIP_PARENT: Outcome.SKIPPED,
    Action.SKIP_SOURCE: Outcome.SKIPPED,
    Action.FAIL_SOURCE: Outcome.FAILED,
}
_STATUS = {
    Outcome.SKIPPED: ItemStatus.SKIPPED,
    Outcome.BLOCKED: ItemStatus.BLOCKED,
    Outcome.FAILED: ItemStatus.FAILED,
}


class Settled(Protocol):
    """A planned item with its row in the state store (a mover's file, for instance)."""

    @property
    def plan(self) -> Planned: ...
    @property
    def row(self) -> int: ...


def mtime_ns(seconds: float) -> int:
    """Nanoseconds as the walk sees them (from its float seconds), so that the state's
    mtime compares equal on the next walk."""
    return int(seconds * 1_000_000_000)


def _kind(plan: Planned) -> str:
    return "folder" if plan.item.is_dir else "file"


class Outcomes:
    """Records what happened to each item of one round (see the module docstring)."""

    def __init__(self, store: StateStore, tally: Tally, job_id: int, round_id: int) -> None:
        self.store = store
        self.tally = tally
        self.job_id = job_id
        self.round_id = round_id
        self.failed_folders: set[bytes] = set()
        """Source paths of the folders that failed or were refused this round."""

    def under_failed_folder(self, path: bytes) -> bool:
        """True when `path` is, or lies below, a folder that failed or was refused."""
        return any(path == f or path.startswith(f + b"/") for f in self.failed_folders)

    # --- rows ----------------------------------------------------------------------------------

    def pending(self, plan: Planned) -> int:
        """The item's row, refreshed as this round's walk saw it; `pending` unless it is done
        (a folder known to exist keeps what the target holds)."""
        item = plan.item
        done = plan.state is not None and plan.state.status == ItemStatus.DONE
        return self.store.upsert_item(
            self.job_id,
            plan.path,
            _kind(plan),
            status=ItemStatus.DONE if done else ItemStatus.PENDING,
            round_id=self.round_id,
            target_path=plan.target_relpath,
            size=None if item.is_dir else item.size,
            mtime_ns=None if item.is_dir else plan.mtime_ns,
        )

    def started(self, work: Settled) -> None:
        """An attempt at the target begins."""
        self.store.mark_started(work.row, self.round_id)
        self.tally.begun(work.plan.item.relpath, work.plan.item.size)

    # --- files ---------------------------------------------------------------------------------

    def arrived(self, work: Settled, item: DriveItem, digest: str, size: int, mtime: float) -> str:
        """Graph holds the file as `item`, sent from bytes whose quickXorHash is `digest` (of
        `size` bytes, modified at `mtime` as the mover read it). When Graph's hash is the same,
        the file is recorded done and "" is returned; otherwise nothing is written and the
        reason is returned (the mover tries again, or calls `failed` with HASH_MISMATCH)."""
        if item.quick_xor_hash != digest:
            return f"quickXorHash mismatch: target {item.quick_xor_hash}, read {digest}"
        plan = work.plan
        self.store.record_done(
            work.row,
            round_id=self.round_id,
            item_id=item.id,
            etag=item.etag,
            quick_xor=digest,
            size=size,
            mtime_ns=mtime_ns(mtime),
            note_code=plan.code,
            note=plan.message,
            verified_by=VerifiedBy.HASH,
        )
        self.tally.finished(plan.item.relpath, Outcome.UPLOADED, size)
        log.debug("uploaded %s (%d bytes, quickXorHash %s)", plan.item.relpath, size, digest)
        return ""

    def enriched(
        self,
        work: Settled,
        item: DriveItem,
        digest: str,
        size: int,
        mtime: float,
        verified_by: VerifiedBy,
        why: str = "",
    ) -> None:
        """Graph holds the file as `item`, which a library rewrote as it stored it (its hash is
        not `digest`, the hash of the bytes read), settled by `verified_by`: PARTS when its
        package was proved part by part, SIZE when the upload taking every byte is all that
        is known (`why` says why no more). Recorded done with what the target stores."""
        plan = work.plan
        code, note = plan.code, plan.message
        if verified_by is not VerifiedBy.PARTS and not code:
            code, note = NOT_VERIFIED, f"SharePoint rewrote the file as it stored it; {why}"
        self.store.record_done(
            work.row,
            round_id=self.round_id,
            item_id=item.id,
            etag=item.etag,
            quick_xor=digest,
            size=size,
            mtime_ns=mtime_ns(mtime),
            note_code=code,
            note=note,
            verified_by=verified_by,
            stored_size=item.size,
            stored_hash=item.quick_xor_hash,
        )
        if verified_by is VerifiedBy.PARTS:
            self.tally.finished(plan.item.relpath, Outcome.ENRICHED, size, ENRICHED_DETAIL)
        else:
            self.tally.finished(plan.item.relpath, Outcome.UNVERIFIED, size, NOT_VERIFIED)

    def adopted(
        self,
        work: Settled,
        remote: RemoteItem,
        size: int,
        mtime: float,
        *,
        digest: str | None = None,
        verified_by: VerifiedBy = VerifiedBy.HASH,
    ) -> None:
        """The target already holds these very bytes (the mover compared the hashes, or proved
        a library's rewrite of them part by part: then `digest` is the hash of the bytes read
        and `verified_by` PARTS): record it, nothing is sent."""
        assert remote.quick_xor is not None
        plan = work.plan
        self.store.record_done(
            work.row,
            round_id=self.round_id,
            item_id=remote.id,
            etag=remote.etag,
            quick_xor=digest or remote.quick_xor,
            size=size,
            mtime_ns=mtime_ns(mtime),
            note_code=plan.code,
            note=plan.message,
            verified_by=verified_by,
            stored_size=remote.size,
            stored_hash=remote.quick_xor,
        )
        self.tally.sent(size, plan.item.relpath)
        detail = "already at target"
        if verified_by is VerifiedBy.PARTS:
            detail += f"; {ENRICHED_DETAIL}"
        self.tally.finished(plan.item.relpath, Outcome.ADOPTED, size, detail)
        log.debug("already at the target: %s (%d bytes)", plan.item.relpath, size)

    def skipped(self, work: Settled, code: str, message: str) -> None:
        """A file the mover did not send, by policy (the target turned out newer)."""
        self._file_outcome(work, Outcome.SKIPPED, code, message)

    def failed(self, work: Settled, code: str, message: str) -> None:
        self._file_outcome(work, Outcome.FAILED, code, message)

    def _file_outcome(self, work: Settled, outcome: Outcome, code: str, message: str) -> None:
        self.store.record_outcome(
            work.row, round_id=self.round_id, status=_STATUS[outcome], code=code, message=message
        )
        self.tally.finished(work.plan.item.relpath, outcome, work.plan.item.size, code)
        _log_outcome(outcome, work.plan.item.relpath, code, message)

    # --- what planning settles -----------------------------------------------------------------

    def not_migrated(self, plan: Planned) -> None:
        """The plan leaves the item out (a rule, a filter, a problem, its folder)."""
        outcome = _NOT_MIGRATED[plan.action]
        if plan.item.is_dir and outcome is not Outcome.SKIPPED:
            self.failed_folders.add(plan.path)
        row = self.store.upsert_item(
            self.job_id,
            plan.path,
            _kind(plan),
            status=ItemStatus.PENDING,
            round_id=self.round_id,
            target_path=plan.target_relpath,
            size=None if plan.item.is_dir else plan.item.size,
            mtime_ns=None if plan.item.is_dir else plan.mtime_ns,
        )
        code, message = plan.code or "", plan.message or ""
        self.store.record_outcome(
            row, round_id=self.round_id, status=_STATUS[outcome], code=code, message=message
        )
        self.tally.finished(
            plan.item.relpath, outcome, 0, code, folder=plan.item.is_dir, item_size=plan.item.size
        )
        _log_outcome(outcome, plan.item.relpath, code, message)

    def orphaned(self, item: WalkItem) -> None:
        """The item's folder could not be created: it fails with it."""
        path = os.fsencode(item.relpath)
        if item.is_dir:
            self.failed_folders.add(path)
        row = self.store.upsert_item(
            self.job_id,
            path,
            "folder" if item.is_dir else "file",
            status=ItemStatus.PENDING,
            round_id=self.round_id,
        )
        code, message = PARENT_NOT_CREATED, "its folder could not be created at the target"
        self.store.record_outcome(
            row, round_id=self.round_id, status=ItemStatus.FAILED, code=code, message=message
        )
        self.tally.finished(
            item.relpath, Outcome.FAILED, 0, code, folder=item.is_dir, item_size=item.size
        )
        _log_outcome(Outcome.FAILED, item.relpath, code, message)

    def folder_unreadable(self, path: bytes, code: str, message: str) -> None:
        """A folder (already planned, maybe created) could not be listed: a failure, or a
        skip when it is a followed link back to one of its parents (nothing new is below)."""
        outcome = Outcome.SKIPPED if code == WalkProblem.SYMLINK_LOOP else Outcome.FAILED
        if outcome is Outcome.FAILED:
            self.failed_folders.add(path)
        row = self.store.item(self.job_id, path)
        if row is not None:
            self.store.record_outcome(
                row.id, round_id=self.round_id, status=_STATUS[outcome], code=code, message=message
            )
        self.tally.finished(os.fsdecode(path), outcome, folder=True)
        _log_outcome(outcome, os.fsdecode(path), code, message)

    def target_lost(self, row: int, code: str, message: str) -> None:
        """A done item is gone from the target or changed there (--verify-target): it is no
        longer done, so that this round plans it again; skipped, not failed: when the source
        no longer has it either, nothing is left to migrate."""
        self.store.record_outcome(
            row, round_id=self.round_id, status=ItemStatus.SKIPPED, code=code, message=message
        )
        log.info("item %d: %s (%s); migrated again", row, message, code)

    def deleted(self, row: int, path: str, message: str, *, counted: bool, folder: bool) -> None:
        """An item gone from the source was deleted at the target (--mirror); `counted` for
        what was deleted itself, not with a folder above it."""
        self.store.record_outcome(
            row, round_id=self.round_id, status=ItemStatus.DELETED, code="MIRRORED", message=message
        )
        if counted:
            self.tally.finished(path, Outcome.DELETED, folder=folder)
            log.info("deleted at the target: %s (%s)", path, message)

    def delete_failed(self, row: int, error: GraphError) -> None:
        self.store.record_outcome(
            row,
            round_id=self.round_id,
            status=ItemStatus.FAILED,
            code=error.code or "delete",
            message=f"could not delete at the target: {error}",
        )
        log.warning("item %d: could not delete at the target: %s", row, error)

    def folder_created(self, row: int, plan: Planned, item_id: str) -> None:
        self.store.record_done(
            row,
            round_id=self.round_id,
            item_id=item_id,
            etag=None,
            quick_xor=None,
            size=None,
            mtime_ns=None,
            note_code=plan.code,
            note=plan.message,
        )
        self.tally.finished(plan.item.relpath, Outcome.CREATED, folder=True)

    def folder_found(self, plan: Planned, item_id: str) -> None:
        """A folder that exists at the target, which the store did not know as done."""
        self.store.record_done(
            self.pending(plan),
            round_id=self.round_id,
            item_id=item_id,
            etag=None,
            quick_xor=None,
            size=None,
            mtime_ns=None,
        )

    def folder_failed(self, row: int, plan: Planned, error: GraphError) -> None:
        """A folder could not be created at the target."""
        self.failed_folders.add(plan.path)
        self.store.record_outcome(
            row,
            round_id=self.round_id,
            status=ItemStatus.FAILED,
            code=error.code or "folder_failed",
            message=str(error),
        )
        self.tally.finished(plan.item.relpath, Outcome.FAILED, folder=True)
        _log_outcome(Outcome.FAILED, plan.item.relpath, error.code or "folder_failed", str(error))


def _log_outcome(outcome: Outcome, path: str, code: str, message: str) -> None:
    if outcome is Outcome.FAILED:
        log.warning("failed: %s: %s (%s)", path, message, code)
    elif log.isEnabledFor(logging.DEBUG):
        log.debug("%s: %s: %s (%s)", outcome, path, message, code)
