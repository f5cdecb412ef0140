"""What each outcome is called in the reports: the Status and Result category of an item, and
the message that says why, from its state (status, code, message). One table for every report
(CSV, JSON, HTML) and for docs/outcomes.md, which a test checks against it.

    state status   ItemReport Status   counted in SummaryReport as      exit code
    done           Migrated            Migrated items                   0
    skipped        Skipped             Skipped items                    0
    blocked        Not migrated        Items not migrated               0
    failed         Failed              Failed items (and not migrated)  1
    pending        In progress         Interrupted items (started)      130 (the round stopped)
                   (not listed)        Not started items (never reached)
    deleted        Deleted             Deleted items                    0

A skip is sharelift's decision (a filter, a link it does not follow, a name it may not fix, the
target newer), with the reason; a failure is something that should have arrived and did not.
"""

from __future__ import annotations

from dataclasses import dataclass

from sharelift.source.rules import Code
from sharelift.state import ItemRecord, ItemStatus, VerifiedBy


@dataclass(frozen=True)
class Category:
    """One Result category: the item status it belongs to, the codes that put an item in it
    (empty: every code of that status not claimed by another), and what it means."""

    name: str
    status: ItemStatus
    codes: frozenset[str]
    meaning: str


def _c(name: str, status: ItemStatus, codes: str, meaning: str) -> Category:
    return Category(name, status, frozenset(codes.split()), meaning)


RENAME_CODES: frozenset[str] = frozenset(
    {
        Code.INVALID_CHARACTER,
        Code.LEADING_TRAILING_SPACE,
        Code.CONTROL_CHARACTER,
        Code.INVALID_UTF8,
        Code.BLOCKED_NAME,
        Code.VTI_IN_NAME,
        Code.TILDE_DOLLAR_PREFIX,
        Code.FORMS_AT_LIBRARY_ROOT,
        Code.CASE_COLLISION,
        Code.UNICODE_COLLISION,
        Code.RENAME_COLLISION,
    }
)
"""The naming rules a rename fixes."""

S, D, B, F = ItemStatus.SKIPPED, ItemStatus.DONE, ItemStatus.BLOCKED, ItemStatus.FAILED
ENRICHED = "ENRICHED"
"""The category key of a file verified by its package parts (it carries no code of its own:
`describe` reads `verified_by`)."""
NOT_VERIFIED = "NOT_VERIFIED"
"""The note code of a file a library rewrote whose content was not compared."""
_DONE_CODES = RENAME_CODES | {ENRICHED, NOT_VERIFIED}

CATEGORIES: tuple[Category, ...] = (
    _c("Migrated", D, "", "at the target and verified: uploaded (its quickXorHash equal to the "
       "bytes read), found there with the same bytes, or a folder created"),
    Category("Migrated, renamed", D, RENAME_CODES, "migrated under a name SharePoint accepts; "
             "the message says which rule and the Destination shows the new name"),
    _c("Migrated, SharePoint added its metadata", D, ENRICHED, "an Office file a SharePoint "
       "library rewrote as it stored it: every part of it but the metadata SharePoint writes "
       "proved identical to the source's (Verified by: package parts)"),
    _c("Migrated, not verified", D, NOT_VERIFIED, "a file a SharePoint library rewrote as it "
       "stored it, its content not compared: the upload took every byte (Verified by: size "
       "only; --no-prove-office-files, or a binary Office file no proof applies to)"),
    _c("Filtered out", S, "FILTERED", "left out by a filter given (--include, --exclude, "
       "--skip-hidden, --skip-extensions, --modified-after, --created-after)"),
    _c("Not a regular file", S, "SYMLINK_NOT_FOLLOWED BROKEN_SYMLINK SYMLINK_LOOP SPECIAL_FILE",
       "a symbolic link not followed (--follow-symlinks), a link to nothing, a link back to a "
       "parent folder, a FIFO, socket or device: nothing to send"),
    Category("Name not allowed", S, RENAME_CODES, "a name SharePoint refuses, with --rename "
             "off (rename it, or allow a rename policy)"),
    _c("Target is newer", S, "TARGET_NEWER", "a file of that name at the target is the same "
       "age or newer (--on-conflict newer, as SPMT); --on-conflict overwrite replaces it"),
    _c("Parent folder not migrated", S, "PARENT_NOT_MIGRATED", "a folder above it is skipped "
       "or blocked, so nothing in it goes"),
    _c("Changed at the target", S, "TARGET_CHANGED TARGET_MISSING", "--verify-target found it "
       "deleted or changed at the target, and the source no longer has it (when the source "
       "has it, it is migrated again in the same round)"),
    _c("Skipped", S, "", "left out by sharelift's decision (the message says why)"),
    _c("Blocked by a SharePoint limit", B, "", "a name over 255 characters, a path over 400, "
       "or a file over 250 GB: no rename fixes it; shorten it or move it"),
    _c("Source read failure", F, "UNREADABLE_FILE UNREADABLE_FOLDER READ_ERROR SOURCE_CHANGING",
       "the source could not be read, or kept changing while it was read"),
    _c("Verification failure", F, "HASH_MISMATCH", "the target's quickXorHash differed from "
       "the bytes read, on every attempt"),
    _c("Parent folder failed", F, "PARENT_NOT_CREATED", "its folder could not be created at "
       "the target (that folder's own row says why)"),
    _c("Conflict at the target", F, "TARGET_IS_FOLDER nameAlreadyExists", "something at the "
       "target is in the way (a folder where a file must go)"),
    _c("Permission failure", F, "accessDenied unauthenticated forbidden", "the target refused "
       "access"),
    _c("Upload failure", F, "", "Microsoft 365 refused or kept failing the upload after every "
       "retry (the message has its answer); the next run tries again"),
    _c("Interrupted", ItemStatus.PENDING, "", "being sent when the round stopped; the next run "
       "resumes it"),
    _c("Deleted at the target", ItemStatus.DELETED, "", "gone from the source, moved to the "
       "target's recycle bin (--mirror)"),
)  # fmt: skip

NOT_STARTED = "Not started"
"""What a stopped round had not reached: not listed in its ItemReport, counted in its summary."""

STATUS_TEXT = {
    ItemStatus.DONE: "Migrated",
    ItemStatus.SKIPPED: "Skipped",
    ItemStatus.BLOCKED: "Not migrated",
    ItemStatus.FAILED: "Failed",
    ItemStatus.PENDING: "In progress",
    ItemStatus.DELETED: "Deleted",
}
"""The ItemReport's Status (SPMT's words where it has them)."""

_BY_CODE = {(c.status, code): c for c in CATEGORIES for code in c.codes}
_DEFAULT = {c.status: c for c in CATEGORIES if not c.codes}


def category(status: ItemStatus, code: str | None) -> Category:
    """The Result category of an item of this status and code."""
    if status is ItemStatus.DONE and code and code not in _DONE_CODES:
        return _DEFAULT[status]  # a note that is not a rename: migrated as it is
    return _BY_CODE.get((status, code or ""), _DEFAULT[status])


@dataclass(frozen=True)
class Described:
    """An item as the reports show it."""

    status: str
    category: str
    code: str
    message: str


def describe(item: ItemRecord) -> Described:
    """Status, Result category, Error code and Message of one item. The message always says
    why for an item that is not migrated: the item's own, else its category's meaning. A
    pending item's code and message are of an earlier attempt, so they are not shown."""
    status = item.status
    if status is ItemStatus.PENDING:
        found = _DEFAULT[status]
        return Described(STATUS_TEXT[status], found.name, "", found.meaning)
    code = item.error_code or ""
    if status is ItemStatus.DONE and not code and item.verified_by == VerifiedBy.PARTS:
        found = category(status, ENRICHED)
        return Described(STATUS_TEXT[status], found.name, "", ENRICHED_NOTE)
    found = category(status, code)
    message = item.error_message or ""
    if status is not ItemStatus.DONE and not message:
        message = found.meaning
    return Described(STATUS_TEXT[status], found.name, code, message)


ENRICHED_NOTE = "verified; SharePoint added its metadata"
"""The Message of a file verified by its package parts."""

VERIFIED_BY = {
    VerifiedBy.HASH: "hash",
    VerifiedBy.PARTS: "package parts",
    VerifiedBy.SIZE: "size only",
}
"""How the reports name the check that proved a migrated file (ItemReport's Verified by)."""


def verified_by(item: ItemRecord) -> str:
    """ItemReport's Verified by: the check that proved a migrated file ("" otherwise)."""
    if item.status is not ItemStatus.DONE or item.verified_by is None:
        return ""
    return VERIFIED_BY.get(VerifiedBy(item.verified_by), "")


def started_in_round(item: ItemRecord) -> bool:
    """False for a pending item the round never started (not listed; counted as not started)."""
    return item.status is not ItemStatus.PENDING or item.started_at is not None
