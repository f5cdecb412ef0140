"""The planning pipeline, written once: listing -> filters -> names -> plan.

    walk_listings (walk.py)     one folder's children at a time, sorted, streamed; each child
                                 marked with the filter that leaves it out, or its problem
    name_children               OneDrive / SharePoint naming rules over the children that are
                                 left (rules.decide_siblings): a filtered or unreadable item is
                                 not migrated, so it takes no name from a sibling
    plan_folder (plan.py)       what to do with each child, given the state store and, on first
                                 contact, what the target folder holds

`plan_listing` is that pipeline for one folder; `plan_tree` runs it over a whole tree for
`sharelift scan` and `migrate --dry-run`. The engine runs `plan_listing` for each listing as
soon as the folder's place at the target is known (its folders are created while the walk goes
on), so all three decide the same names and actions for the same tree, state and options.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import NamedTuple

from sharelift.plan import Planned, RemoteItem, plan_folder
from sharelift.source.rules import Decision, RenamePolicy, TargetPrefix, decide_siblings
from sharelift.source.walk import Listing, ScanOptions, WalkItem, walk_listings
from sharelift.state import KnownItem


class Parent(NamedTuple):
    """Where a folder's children go."""

    target: str | None
    """The folder's path below the job's target folder ('' for the top); None when the folder
    is not migrated (its children are then planned, and not migrated either)."""
    length: int
    """The length of the folder's decoded target path, library prefix included (a child's path
    is this plus '/' and its name, counted against the 400-character limit)."""


class PlannedListing(NamedTuple):
    """One folder's listing and the plan of each of its children, in the listing's order."""

    listing: Listing
    parent: Parent
    plans: list[Planned]


def top(prefix: TargetPrefix) -> Parent:
    """Where the children of SOURCE go: the job's target folder."""
    return Parent("", len(prefix.path))


def parent_of_folder(plan: Planned) -> Parent:
    """Where the children of a planned folder go (it must be one the walk lists)."""
    assert plan.decision is not None
    target = plan.target_relpath if plan.action.migrates else None
    return Parent(target, plan.decision.path_length)


def named(item: WalkItem) -> bool:
    """True for a child that takes part in naming: neither filtered nor unreadable. These are
    also the folders the walk lists."""
    return item.filtered is None and item.problem is None


def name_children(
    listing: Listing, rename: RenamePolicy, parent: Parent, prefix: TargetPrefix
) -> list[Decision | None]:
    """The naming rules' decision for each child of `listing`, None for a child that does not
    take part in naming (filtered, or with a problem)."""
    children = listing.children
    candidates = [child for child in children if named(child)]
    decisions = decide_siblings(
        candidates,
        rename,
        parent_path_length=parent.length,
        at_library_root=prefix.at_library_root and not listing.parts,
    )
    if len(candidates) == len(children):
        return list(decisions)
    each = iter(decisions)
    return [next(each) if named(child) else None for child in children]


def plan_listing(
    listing: Listing,
    parent: Parent,
    *,
    rename: RenamePolicy,
    prefix: TargetPrefix,
    state: Mapping[bytes, KnownItem],
    remote: Mapping[str, RemoteItem] | None = None,
    policy: str = "newer",
) -> list[Planned]:
    """Name and plan every child of `listing` (see `plan.plan_folder` for `state`, `remote`
    and `policy`)."""
    decisions = name_children(listing, rename, parent, prefix)
    return plan_folder(listing, decisions, parent.target, state, remote, policy)


StateReader = Callable[[bytes], Mapping[bytes, KnownItem]]
"""The state store's items directly inside a folder (its relative path as bytes), by path."""


def plan_tree(
    source: str | os.PathLike[str],
    options: ScanOptions,
    *,
    state: StateReader | None = None,
    policy: str = "newer",
) -> Iterator[PlannedListing]:
    """Walk SOURCE and plan every folder, in the walk's order (each folder's listing comes
    after its parent's). Without `state`, everything is planned as new. Memory is bounded as
    the walk's is. Raises SourceError when SOURCE is not a readable folder."""
    prefix = options.target or TargetPrefix()
    parents: dict[tuple[str, ...], Parent] = {(): top(prefix)}
    for listing in walk_listings(source, options):
        parent = parents.pop(listing.parts)
        known = state(os.fsencode("/".join(listing.parts))) if state is not None else {}
        plans = plan_listing(
            listing, parent, rename=options.rename, prefix=prefix, state=known, policy=policy
        )
        for plan in plans:
            if plan.item.is_dir and named(plan.item):
                parents[plan.item.parts] = parent_of_folder(plan)
        yield PlannedListing(listing, parent, plans)
