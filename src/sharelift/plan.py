"""What to do with each item of one source folder: the pure heart of a migration round.

`plan_folder` takes a folder's walk listing, the rule decisions for its children, what the state
store remembers of them and (on first contact) what the target folder already holds, and returns
one `Planned` per child. It does no I/O, so every case below is a unit test. It is one stage of
the planning pipeline (`sharelift.source.pipeline`), which scan, dry run and the engine share.

    unchanged since the last verified upload      SKIP_UNCHANGED   (no Graph request at all)
    new, or changed at the source                 UPLOAD           (conflictBehavior per policy)
    already at the target, maybe the same bytes   ADOPT_IF_SAME    (hash locally, compare, decide;
      (or a library's rewrite of them)                               an Office file: prove it)
    at the target and newer there (SPMT default)  SKIP_TARGET_NEWER
    a folder not yet at the target                CREATE_FOLDER
    a folder known to exist                       FOLDER_KNOWN
    refused by a rule, filtered                   BLOCK / SKIP_RULE / SKIP_FILTERED
    a link not followed, a broken link, a loop,   SKIP_SOURCE      (nothing to send: skipped,
      a FIFO, socket or device                                     as scan reports it)
    unreadable at the source                      FAIL_SOURCE
    in a folder that is not migrated              SKIP_PARENT

Conflict policies for a name already taken at the target by something sharelift did not put there:
    newer      (default, as SPMT) skip when the target is the same or newer, else replace
    overwrite  always replace
    rename     keep both: Graph gives the upload a free name ("report 1.docx")
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from sharelift.office import office_kind
from sharelift.source.rules import Decision, Status
from sharelift.source.walk import Listing, WalkItem, WalkProblem
from sharelift.state import ItemStatus, KnownItem

CONFLICT_POLICIES = ("newer", "overwrite", "rename")
# Graph keeps fileSystemInfo to the second on OneDrive for Business and SharePoint; two times
# within this tolerance are the same time.
TIME_TOLERANCE_S = 1.0


class Action(enum.StrEnum):
    SKIP_UNCHANGED = "skip_unchanged"
    UPLOAD = "upload"
    ADOPT_IF_SAME = "adopt_if_same"
    SKIP_TARGET_NEWER = "skip_target_newer"
    CREATE_FOLDER = "create_folder"
    FOLDER_KNOWN = "folder_known"
    BLOCK = "block"
    SKIP_RULE = "skip_rule"
    SKIP_FILTERED = "skip_filtered"
    SKIP_SOURCE = "skip_source"
    FAIL_SOURCE = "fail_source"
    SKIP_PARENT = "skip_parent"

    @property
    def migrates(self) -> bool:
        """True when the item goes to the target (or is there already)."""
        return self in _MIGRATING


_MIGRATING = frozenset(
    {
        Action.SKIP_UNCHANGED,
        Action.UPLOAD,
        Action.ADOPT_IF_SAME,
        Action.CREATE_FOLDER,
        Action.FOLDER_KNOWN,
    }
)


@dataclass(frozen=True, slots=True)
class RemoteItem:
    """What the planner needs to know of an item already at the target."""

    id: str
    name: str
    is_folder: bool
    size: int
    quick_xor: str | None
    modified: datetime | None
    """fileSystemInfo.lastModifiedDateTime (the time a user sees), UTC."""
    etag: str | None = None


class Planned(NamedTuple):
    """One child of a folder and what to do with it. A named tuple: a re-run makes one per
    file, and it is cheap."""

    item: WalkItem
    path: bytes
    """Source path relative to SOURCE, as bytes (the state store's key)."""
    target_relpath: str | None
    """Path below the job's target folder after renames; None when not migrated."""
    action: Action
    conflict: str
    """conflictBehavior for an upload or folder creation: fail, replace or rename."""
    state: KnownItem | None
    remote: RemoteItem | None
    code: str | None = None
    message: str | None = None
    decision: Decision | None = None
    """What the naming rules said; None for an item left out before naming (filtered, or
    one the walk could not take): such an item takes no name from its siblings."""

    @property
    def mtime_ns(self) -> int:
        return int(self.item.mtime * 1_000_000_000)

    @property
    def is_file(self) -> bool:
        return not self.item.is_dir


_SKIPPED_PROBLEMS = {
    WalkProblem.SYMLINK_NOT_FOLLOWED: "symbolic link not followed (--follow-symlinks follows it)",
    WalkProblem.BROKEN_SYMLINK: "symbolic link points nowhere",
    WalkProblem.SYMLINK_LOOP: "symbolic link leads back to one of its parent folders",
    WalkProblem.SPECIAL_FILE: "not a regular file or folder (a FIFO, socket or device)",
}
"""Walk problems that leave an item out by sharelift's choice (skipped, as `scan` says),
with the reason a report gives; any other problem (unreadable) is a failure."""


def source_path(item: WalkItem) -> bytes:
    """The state store's key for a walk item: its relative path as bytes, '/'-separated."""
    return os.fsencode(item.relpath)


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _unchanged(state: KnownItem | None, item: WalkItem, target_relpath: str) -> bool:
    return (
        state is not None
        and state.status == ItemStatus.DONE
        and state.item_id is not None
        and state.target_path == target_relpath
        and (item.is_dir or (state.size == item.size and state.mtime_ns == _ns(item.mtime)))
    )


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _first_finding(decision: Decision) -> tuple[str, str]:
    for finding in decision.findings:
        if finding.severity.value in ("blocked", "skipped"):
            return finding.code.value, finding.message
    f = decision.findings[0]
    return f.code.value, f.message


def plan_folder(
    listing: Listing,
    decisions: Sequence[Decision | None],
    parent_target: str | None,
    state: Mapping[bytes, KnownItem],
    remote: Mapping[str, RemoteItem] | None,
    policy: str = "newer",
) -> list[Planned]:
    """Plan every child of `listing` (in its order).

    `decisions` holds the naming rules' decision for each child, None for a child that is
    filtered or has a problem. `parent_target` is the folder's path below the job's target
    folder ('' for the top), None when the folder is not migrated. `state` holds the store's
    rows for this folder's children, by source path. `remote` maps the lower-cased names in
    the target folder to what is there, or is None when the target folder was not listed:
    then a name is assumed free unless the state says it is ours, and an upload uses
    conflictBehavior "fail" so that a surprise comes back as a 409 that the engine resolves
    by looking the item up (one request, only in that case).
    """
    if policy not in CONFLICT_POLICIES:
        raise ValueError(f"unknown conflict policy {policy!r}")
    plans: list[Planned] = []
    for item, decision in zip(listing.children, decisions, strict=True):
        path = source_path(item)
        row = state.get(path)
        if item.filtered is not None:
            plans.append(
                Planned(
                    item,
                    path,
                    None,
                    Action.SKIP_FILTERED,
                    "fail",
                    row,
                    None,
                    "FILTERED",
                    f"left out by {item.filtered}",
                )
            )
            continue
        if item.problem is not None:
            skipped = _SKIPPED_PROBLEMS.get(item.problem)
            plans.append(
                Planned(
                    item,
                    path,
                    None,
                    Action.SKIP_SOURCE if skipped else Action.FAIL_SOURCE,
                    "fail",
                    row,
                    None,
                    item.problem.value,
                    skipped or item.detail or item.problem.value,
                )
            )
            continue
        assert decision is not None, "an item that is neither filtered nor unreadable is named"
        if not decision.status.migrated or decision.target is None:
            code, message = _first_finding(decision)
            action = Action.BLOCK if decision.status is Status.BLOCKED else Action.SKIP_RULE
            plans.append(
                Planned(item, path, None, action, "fail", row, None, code, message, decision)
            )
            continue
        if parent_target is None:
            plans.append(
                Planned(
                    item,
                    path,
                    None,
                    Action.SKIP_PARENT,
                    "fail",
                    row,
                    None,
                    "PARENT_NOT_MIGRATED",
                    "a folder above it is not migrated",
                    decision,
                )
            )
            continue
        target_relpath = _join(parent_target, decision.target)
        there = remote.get(decision.target.lower()) if remote is not None else None
        if not item.is_dir and _unchanged(row, item, target_relpath):
            plans.append(
                Planned(
                    item,
                    path,
                    target_relpath,
                    Action.SKIP_UNCHANGED,
                    "fail",
                    row,
                    there,
                    None,
                    None,
                    decision,
                )
            )
            continue
        note = _first_finding(decision) if decision.status is Status.RENAMED else (None, None)
        named = (*note, decision)
        if item.is_dir:
            if _unchanged(row, item, target_relpath) or (there is not None and there.is_folder):
                action = Action.FOLDER_KNOWN
            else:
                action = Action.CREATE_FOLDER
            plans.append(Planned(item, path, target_relpath, action, "fail", row, there, *named))
            continue
        ours = row is not None and row.item_id is not None and row.target_path == target_relpath
        if there is None:
            # Nothing known there: replace what we put there before, else expect a free name.
            conflict = "replace" if ours else "fail"
            plans.append(
                Planned(item, path, target_relpath, Action.UPLOAD, conflict, row, None, *named)
            )
            continue
        plans.append(_against_remote(item, path, target_relpath, row, there, policy, ours, named))
    return plans


def _against_remote(
    item: WalkItem,
    path: bytes,
    target_relpath: str,
    row: KnownItem | None,
    there: RemoteItem,
    policy: str,
    ours: bool,
    named: tuple[str | None, str | None, Decision],
) -> Planned:
    if there.is_folder:
        return Planned(
            item,
            path,
            target_relpath,
            Action.FAIL_SOURCE,
            "fail",
            row,
            there,
            "TARGET_IS_FOLDER",
            "a folder of that name exists at the target",
            named[2],
        )
    if ours and row is not None and there.id == row.item_id:
        return Planned(item, path, target_relpath, Action.UPLOAD, "replace", row, there, *named)
    if policy == "overwrite":
        return Planned(item, path, target_relpath, Action.UPLOAD, "replace", row, there, *named)
    if there.size == item.size or (office_kind(there.name) == "ooxml" and _same_time(there, item)):
        # Possibly the very bytes (a re-run after a crash, or content copied by other means),
        # or a library's rewrite of them (an Office file keeps the source's time when
        # SharePoint adds its metadata, not its size): hash locally, prove an Office file part
        # by part, and compare before deciding; no upload when they match.
        conflict = "rename" if policy == "rename" else "replace"
        return Planned(
            item, path, target_relpath, Action.ADOPT_IF_SAME, conflict, row, there, *named
        )
    if policy == "rename":
        return Planned(item, path, target_relpath, Action.UPLOAD, "rename", row, there, *named)
    if target_is_newer(there, item):
        return Planned(
            item,
            path,
            target_relpath,
            Action.SKIP_TARGET_NEWER,
            "fail",
            row,
            there,
            "TARGET_NEWER",
            "the target has a newer version of this file",
            named[2],
        )
    return Planned(item, path, target_relpath, Action.UPLOAD, "replace", row, there, *named)


def _same_time(there: RemoteItem, item: WalkItem) -> bool:
    if there.modified is None:
        return False
    source = datetime.fromtimestamp(item.mtime, UTC)
    return abs((there.modified - source).total_seconds()) < TIME_TOLERANCE_S


def target_is_newer(there: RemoteItem, item: WalkItem) -> bool:
    """SPMT's rule: the target wins when it was modified at or after the source (to the second)."""
    if there.modified is None:
        return False
    source = datetime.fromtimestamp(item.mtime, UTC)
    return (there.modified - source).total_seconds() >= -TIME_TOLERANCE_S
