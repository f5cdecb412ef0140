"""OneDrive / SharePoint naming and size restrictions, and the rename policy that fixes names.

The rules follow Microsoft's support article "Restrictions and limitations in OneDrive and
SharePoint" (https://support.microsoft.com/office/64883a5d-228e-48f5-b3d2-eb39e07630fa):

- invalid characters ``" * : < > ? / \\ |`` and leading or trailing spaces (a rename
  replaces the characters and removes the spaces, so an extension never changes);
- blocked names ``.lock``, ``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM0``-``COM9``,
  ``LPT0``-``LPT9``, ``desktop.ini`` (whole name, any case), ``_vti_`` anywhere in a name, a
  name starting with ``~$``, and ``forms`` as a folder at the root of a library;
- a name segment of at most 255 characters, and a *decoded* path of at most 400 characters,
  counted from the server-relative URL of the library (site, library and folder prefix
  included, each ``%20`` counting as one character; see Microsoft Q&A 1850459,
  https://learn.microsoft.com/answers/questions/1850459);
- a file of at most 250 GB (taken as 250 GiB, the unit Microsoft's upload limits use).

Beyond the article, two things break migrations in practice and are reported here: names that
collide in one folder once case is ignored or once Unicode is normalised (SharePoint is
case-insensitive; a macOS share holds NFD names beside NFC ones), and names that are not valid
UTF-8 on the source (they cannot be sent to Graph) or that hold control characters.

The public entry point is :func:`decide_siblings`: a pure function from one folder's children to
a :class:`Decision` per child (target name, findings, status). It is what ``scan`` and the
migration engine call; the single-name helpers below are its parts.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol
from urllib.parse import unquote, urlsplit

from sharelift.errors import UsageError

MAX_SEGMENT = 255
MAX_PATH = 400
MAX_FILE_SIZE = 250 * 1024**3

INVALID_CHARACTERS = frozenset('"*:<>?/\\|')
_BLOCKED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", ".lock", "desktop.ini"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)
_VTI = re.compile("_vti_", re.IGNORECASE)
# rclone's look-alike mapping for OneDrive (lib/encoder): full-width forms of the invalid
# characters, "symbol for space" for an edge space, control pictures for C0 controls.
_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in INVALID_CHARACTERS}
_FULLWIDTH_SPACE = "\u2420"  # ␠
_FULLWIDTH_TILDE = "\uff5e"  # ～
_FULLWIDTH_LOW_LINE = "\uff3f"  # ＿
_FULLWIDTH_UNDECODABLE = "\ufffd"  # �


class Severity(enum.StrEnum):
    """How a finding affects an item: renamed on the target, or not migrated (and why)."""

    RENAMED = "renamed"  # migrated under another name chosen by the rename policy
    SKIPPED = "skipped"  # not migrated by policy or because the source cannot provide it
    BLOCKED = "blocked"  # not migrated: the service refuses it and no policy can fix it


class Status(enum.StrEnum):
    """What happens to an item."""

    MIGRATE = "migrate"
    RENAMED = "renamed"
    SKIPPED = "skipped"
    BLOCKED = "blocked"
    FILTERED = "filtered"  # left out by a filter the administrator chose; not a finding

    @property
    def migrated(self) -> bool:
        return self in _MIGRATED


_MIGRATED = frozenset({Status.MIGRATE, Status.RENAMED})


class Code(enum.StrEnum):
    """Stable finding codes (they appear in reports; never renumber or reuse one)."""

    INVALID_CHARACTER = "INVALID_CHARACTER"
    LEADING_TRAILING_SPACE = "LEADING_TRAILING_SPACE"
    CONTROL_CHARACTER = "CONTROL_CHARACTER"
    INVALID_UTF8 = "INVALID_UTF8"
    BLOCKED_NAME = "BLOCKED_NAME"
    VTI_IN_NAME = "VTI_IN_NAME"
    TILDE_DOLLAR_PREFIX = "TILDE_DOLLAR_PREFIX"
    FORMS_AT_LIBRARY_ROOT = "FORMS_AT_LIBRARY_ROOT"
    CASE_COLLISION = "CASE_COLLISION"
    UNICODE_COLLISION = "UNICODE_COLLISION"
    RENAME_COLLISION = "RENAME_COLLISION"
    NAME_TOO_LONG = "NAME_TOO_LONG"
    PATH_TOO_LONG = "PATH_TOO_LONG"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    # Source-side problems, found by the walk.
    UNREADABLE_FOLDER = "UNREADABLE_FOLDER"
    UNREADABLE_FILE = "UNREADABLE_FILE"
    SYMLINK_NOT_FOLLOWED = "SYMLINK_NOT_FOLLOWED"
    SYMLINK_LOOP = "SYMLINK_LOOP"
    BROKEN_SYMLINK = "BROKEN_SYMLINK"
    SPECIAL_FILE = "SPECIAL_FILE"
    PARENT_NOT_MIGRATED = "PARENT_NOT_MIGRATED"


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason an item will not go as it is."""

    code: Code
    severity: Severity
    message: str


# --- rename policy --------------------------------------------------------------------------


class RenameMode(enum.StrEnum):
    UNDERSCORE = "underscore"
    CHAR = "char"
    FULLWIDTH = "fullwidth"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class RenamePolicy:
    """How names that break a rule are fixed: ``underscore`` (SPMT's choice, the default), one
    chosen character, ``fullwidth`` look-alikes (as rclone does), or ``off`` (skip such items).
    """

    mode: RenameMode = RenameMode.UNDERSCORE
    char: str = "_"

    @classmethod
    def parse(cls, value: str) -> RenamePolicy:
        """Parse a ``--rename`` value; raises :class:`UsageError` naming the flag."""
        lowered = value.lower()
        if lowered in (RenameMode.UNDERSCORE, RenameMode.FULLWIDTH, RenameMode.OFF):
            return cls(RenameMode(lowered))
        if len(value) != 1:
            raise UsageError(
                "--rename: expected underscore, fullwidth, off or a single character, "
                f"got {value!r}"
            )
        if (
            value in INVALID_CHARACTERS
            or value in "~.%#"
            or value.isspace()
            or unicodedata.category(value) in ("Cc", "Cs", "Cf", "Zs")
        ):
            raise UsageError(f"--rename: {value!r} cannot replace characters in a name")
        if value == "_":
            return cls()
        return cls(RenameMode.CHAR, value)

    @property
    def enabled(self) -> bool:
        return self.mode is not RenameMode.OFF

    def __str__(self) -> str:
        return self.char if self.mode is RenameMode.CHAR else self.mode.value


# --- single names ---------------------------------------------------------------------------


# os.fsdecode maps bytes that are not UTF-8 to lone surrogates (PEP 383 surrogateescape);
# control characters (category Cc) are exactly U+0000-U+001F and U+007F-U+009F.
_UNDECODABLE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_INVALID = re.compile(r'["*:<>?/\\|]')
_BAD_CHARACTER = re.compile('[\ud800-\udfff\x00-\x1f\x7f-\x9f"*:<>?/\\\\|]')
# One pass that clears the vast majority of names, which break no rule.
_SUSPECT = re.compile('[\ud800-\udfff\x00-\x1f\x7f-\x9f"*:<>?/\\\\|]|^ | $|^~\\$|_[vV][tT][iI]_')


def _fullwidth_of(match: re.Match[str]) -> str:
    """rclone's look-alike for one character a name cannot hold."""
    c = match.group(0)
    if c in _FULLWIDTH:
        return _FULLWIDTH[c]
    if c < "\x20":
        return chr(0x2400 + ord(c))  # control pictures ␀ .. ␟
    if c == "\x7f":
        return "\u2421"  # ␡
    return _FULLWIDTH_UNDECODABLE  # C1 controls and bytes that are not UTF-8


def name_findings(name: str, *, is_dir: bool, at_library_root: bool) -> list[Finding]:
    """The rules one name breaks on its own (collisions and path length need the folder)."""
    found: list[Finding] = []
    if len(name) > MAX_SEGMENT:
        found.append(
            Finding(
                Code.NAME_TOO_LONG,
                Severity.BLOCKED,
                f"name is {len(name)} characters, over the {MAX_SEGMENT} limit",
            )
        )
    lowered = name.lower()
    if lowered in _BLOCKED_NAMES:
        found.append(Finding(Code.BLOCKED_NAME, Severity.RENAMED, f"{name!r} is a blocked name"))
    if is_dir and at_library_root and lowered == "forms":
        found.append(
            Finding(
                Code.FORMS_AT_LIBRARY_ROOT,
                Severity.RENAMED,
                "a folder named forms is not allowed at the root of a library",
            )
        )
    if not _SUSPECT.search(name):
        return found
    if _UNDECODABLE.search(name):
        found.append(
            Finding(Code.INVALID_UTF8, Severity.RENAMED, "name holds bytes that are not UTF-8")
        )
    if _CONTROL.search(name):
        found.append(
            Finding(Code.CONTROL_CHARACTER, Severity.RENAMED, "name holds control characters")
        )
    bad_chars = sorted(set(_INVALID.findall(name)))
    if bad_chars:
        found.append(
            Finding(
                Code.INVALID_CHARACTER,
                Severity.RENAMED,
                f"name holds invalid characters {' '.join(bad_chars)}",
            )
        )
    if name.startswith(" ") or name.endswith(" "):
        found.append(
            Finding(
                Code.LEADING_TRAILING_SPACE, Severity.RENAMED, "name starts or ends with a space"
            )
        )
    if _VTI.search(name):
        found.append(Finding(Code.VTI_IN_NAME, Severity.RENAMED, "name contains _vti_"))
    if name.startswith("~$"):
        found.append(Finding(Code.TILDE_DOLLAR_PREFIX, Severity.RENAMED, "name starts with ~$"))
    return found


def fix_name(name: str, policy: RenamePolicy, *, is_dir: bool, at_library_root: bool) -> str:
    """The name with every fixable rule repaired by ``policy`` (unchanged when nothing breaks).

    Deterministic and idempotent: ``fix_name(fix_name(n)) == fix_name(n)``. The length limit is
    not repaired (truncating names silently loses meaning); it stays a blocking finding.
    """
    full = policy.mode is RenameMode.FULLWIDTH
    rep = policy.char
    out = _BAD_CHARACTER.sub(_fullwidth_of if full else (lambda _: rep), name)
    if out.startswith(" ") or out.endswith(" "):
        # Removed, not replaced, as Windows and the OneDrive sync client save such names
        # (https://support.microsoft.com/office/64883a5d-228e-48f5-b3d2-eb39e07630fa lists
        # the spaces; SPMT's "Replace invalid filename characters" covers only the characters
        # " * : < > ? / \ |): replacing a trailing space would change the extension
        # ("budget*.xlsx " must become "budget_.xlsx", not "budget_.xlsx_"). A name of
        # spaces only keeps one replacement character.
        out = out.strip(" ") or (_FULLWIDTH_SPACE if full else rep)
    if out.startswith("~$"):
        out = (_FULLWIDTH_TILDE if full else rep) + out[1:]
    if _VTI.search(out):
        # Break each "_vti_" by replacing its closing underscore.
        closing = _FULLWIDTH_LOW_LINE if full else ("-" if rep == "_" else rep)
        while _VTI.search(out):
            out = _VTI.sub(lambda m: m.group(0)[:4] + closing, out)
    extra = _FULLWIDTH_LOW_LINE if full else rep
    if out.lower() in _BLOCKED_NAMES or (is_dir and at_library_root and out.lower() == "forms"):
        out += extra
    return out


def collision_key(name: str) -> str:
    """Two names with the same key cannot be siblings on OneDrive / SharePoint."""
    return unicodedata.normalize("NFC", name).lower()


# --- a folder's children --------------------------------------------------------------------


class Sibling(Protocol):
    """What :func:`decide_siblings` needs to know about a child (a walk item fits)."""

    @property
    def name(self) -> str: ...
    @property
    def is_dir(self) -> bool: ...
    @property
    def size(self) -> int: ...


class Decision(NamedTuple):
    """What happens to one child: its target name (``None`` when not migrated), the findings
    that explain any difference, its status, and the length of its decoded target path."""

    source: str
    target: str | None
    findings: tuple[Finding, ...]
    status: Status
    path_length: int


def _status_of(findings: Sequence[Finding]) -> Status:
    if not findings:
        return Status.MIGRATE
    severities = {f.severity for f in findings}
    if Severity.BLOCKED in severities:
        return Status.BLOCKED
    if Severity.SKIPPED in severities:
        return Status.SKIPPED
    if Severity.RENAMED in severities:
        return Status.RENAMED
    return Status.MIGRATE


def _with_suffix(name: str, n: int, is_dir: bool) -> str:
    stem, dot, ext = name.rpartition(".")
    if is_dir or not dot or not stem:
        stem, ext = name, ""
    else:
        ext = "." + ext
    suffix = f" ({n})"
    stem = stem[: max(1, MAX_SEGMENT - len(suffix) - len(ext))]
    return f"{stem}{suffix}{ext}"


def decide_siblings(
    children: Sequence[Sibling],
    policy: RenamePolicy,
    *,
    parent_path_length: int = 0,
    at_library_root: bool = False,
) -> list[Decision]:
    """Decide every child of one folder; the result is in the order of ``children``.

    ``parent_path_length`` is the length of the parent's decoded target path (already renamed),
    including the library prefix when one is known; a child's path is that plus ``/`` and its
    target name. Pure and deterministic: the same children give the same decisions, whatever
    their order. Names that need no change claim their names first; renamed names and
    colliding names are then given a distinct `` (n)`` suffix in sorted order (or skipped when
    renaming is off). Applying it to its own output changes nothing.
    """
    count = len(children)
    names = [child.name for child in children]
    findings: list[list[Finding]] = [[] for _ in range(count)]
    targets: list[str | None] = [None] * count
    for i, child in enumerate(children):
        found = name_findings(names[i], is_dir=child.is_dir, at_library_root=at_library_root)
        if not child.is_dir and child.size > MAX_FILE_SIZE:
            found.append(
                Finding(
                    Code.FILE_TOO_LARGE,
                    Severity.BLOCKED,
                    f"file is {child.size:,} bytes, over the 250 GB limit",
                )
            )
        findings[i] = found
        if not found:
            targets[i] = names[i]
            continue
        fixable = [f for f in found if f.severity is Severity.RENAMED]
        if any(f.severity is Severity.BLOCKED for f in found):
            pass  # not migrated whatever its name: it must not take a name from a sibling
        elif not fixable:
            targets[i] = child.name
        elif policy.enabled:
            targets[i] = fix_name(
                child.name, policy, is_dir=child.is_dir, at_library_root=at_library_root
            )
        if not policy.enabled:
            findings[i] = [
                Finding(f.code, Severity.SKIPPED, f.message + " (renaming is off)")
                if f.severity is Severity.RENAMED
                else f
                for f in found
            ]
    # Claim names: unchanged names first, then renamed ones, each group in sorted order; only
    # then are the losers given suffixes, so a suffix never takes a name a sibling already has.
    keys = [collision_key(t) if t is not None else None for t in targets]
    claimed: dict[str, int] = {}
    losers: list[tuple[int, str]] = []
    order: Sequence[int]
    if len({k for k in keys if k is not None}) < count - keys.count(None):
        order = sorted(range(count), key=lambda i: (targets[i] != names[i], names[i]))
    else:
        order = range(count)  # no collision: the order of claims cannot matter
    for i in order:
        key = keys[i]
        if key is None:
            continue
        if key in claimed:
            losers.append((i, key))
        else:
            claimed[key] = i
    for i, key in losers:
        target = targets[i]
        assert target is not None
        other = names[claimed[key]]
        mine = names[i]
        if mine.lower() == other.lower():
            code, what = Code.CASE_COLLISION, "differs only by case from"
        elif collision_key(mine) == collision_key(other):
            code, what = Code.UNICODE_COLLISION, "differs only by Unicode normalisation from"
        else:
            code, what = Code.RENAME_COLLISION, "once renamed, collides with"
        if not policy.enabled:
            findings[i].append(
                Finding(code, Severity.SKIPPED, f"name {what} {other!r} (renaming is off)")
            )
            targets[i] = None
            continue
        n = 1
        while True:
            candidate = _with_suffix(target, n, children[i].is_dir)
            candidate_key = collision_key(candidate)
            if candidate_key not in claimed and not name_findings(
                candidate, is_dir=children[i].is_dir, at_library_root=at_library_root
            ):
                break
            n += 1
        findings[i].append(
            Finding(code, Severity.RENAMED, f"name {what} {other!r}; renamed with a suffix")
        )
        targets[i] = candidate
        claimed[candidate_key] = i
    decisions = []
    for i in range(count):
        target = targets[i]
        found = findings[i]
        length = parent_path_length + 1 + len(target if target is not None else names[i])
        if not found and length <= MAX_PATH:
            decisions.append(Decision(names[i], target, (), Status.MIGRATE, length))
            continue
        if target is not None and length > MAX_PATH:
            found.append(
                Finding(
                    Code.PATH_TOO_LONG,
                    Severity.BLOCKED,
                    f"target path is {length} characters, over the {MAX_PATH} limit",
                )
            )
        status = _status_of(found)
        decisions.append(
            Decision(
                source=names[i],
                target=target if status.migrated else None,
                findings=tuple(found),
                status=status,
                path_length=length,
            )
        )
    return decisions


# --- target prefix --------------------------------------------------------------------------

_SITE_COLLECTIONS = ("sites", "teams", "personal", "portals")


@dataclass(frozen=True, slots=True)
class TargetPrefix:
    """The decoded server-relative path items will live under, and whether that is a library
    root (where a folder named ``forms`` is refused).

    What is counted toward the 400-character limit: this path (for example
    ``/sites/Team/Shared Documents/Sub``), then ``/`` and each target name below it.
    """

    path: str = ""
    at_library_root: bool = True

    @classmethod
    def parse(cls, target: str) -> TargetPrefix:
        """From a SharePoint / OneDrive URL, ``onedrive:UPN[/folder]`` or a server-relative path
        (no network: `sharelift.scan` with a credential resolves any TARGET through Graph).

        Under ``/sites/``, ``/teams/``, ``/personal/`` and ``/portals/`` the site takes two
        segments and the library the next one; on a tenant's root site the library is the
        first segment. Anything after the library is a folder. Raises :class:`UsageError`.
        """
        text = target.strip()
        if text.lower().startswith("onedrive:"):
            # onedrive:UPN[/folder]: the OneDrive's path as its URL has it (Documents is the
            # library's URL name, whatever its display name), then the folder.
            upn, _, folder = text.split(":", 1)[1].strip().lstrip("/").partition("/")
            if "@" not in upn:
                raise UsageError(f"TARGET: {target!r} needs a user principal name after onedrive:")
            account = re.sub(r"[.@]", "_", upn.lower())
            below = "/".join(p for p in folder.split("/") if p)
            path = f"/personal/{account}/Documents" + (f"/{below}" if below else "")
            return cls(path, at_library_root=not below)
        if text.lower().startswith(("https://", "http://")):
            path = urlsplit(text).path
        elif text.startswith("/"):
            path = text
        else:
            raise UsageError(
                f"TARGET: {target!r} is not a https:// URL, onedrive:UPN or /server/relative/path"
            )
        segments = [unquote(s) for s in path.split("/") if s]
        if not segments:
            raise UsageError(f"TARGET: {target!r} names no document library")
        library_index = 2 if segments[0].lower() in _SITE_COLLECTIONS else 0
        # Links copied from a browser often end in a view page; that is not a folder.
        if segments[-1].lower().endswith(".aspx"):
            segments = segments[:-1]
            if len(segments) >= library_index + 2 and segments[-1].lower() == "forms":
                segments = segments[:-1]
        if len(segments) <= library_index:
            raise UsageError(f"TARGET: {target!r} names a site but no document library")
        return cls("/" + "/".join(segments), at_library_root=len(segments) == library_index + 1)
