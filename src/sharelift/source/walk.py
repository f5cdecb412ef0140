"""Streaming, read-only walk of a source tree, with the filters an administrator chooses.

The walk lists one folder at a time (``os.scandir``), sorts its children by name and yields
them as one :class:`Listing`; folders are visited depth first in that order, so the order is
stable from run to run and memory holds only the folders on the current path and the
not-yet-visited siblings of each (never the whole tree).

Nothing on the source changes: folders are opened with ``O_NOATIME`` where the OS allows it,
files are never opened (readability is checked with ``access``), and FIFOs, sockets and device
files are reported, not touched. A folder or entry that cannot be read is reported on its
listing or item, never raised, so one bad entry cannot stop a scan of millions.
"""

from __future__ import annotations

import datetime as dt
import enum
import fnmatch
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from sharelift.errors import SourceError, UsageError
from sharelift.source.rules import RenamePolicy, TargetPrefix

_FILE_ATTRIBUTE_HIDDEN = 0x2
_CIFS_ATTRIBUTES = "system.cifs_dosattrib"  # a mounted SMB share's DOS attributes (Linux cifs)


class WalkProblem(enum.StrEnum):
    """Why an item or folder could not be taken as it is (mapped to finding codes by scan)."""

    UNREADABLE_FOLDER = "UNREADABLE_FOLDER"
    UNREADABLE_FILE = "UNREADABLE_FILE"
    SYMLINK_NOT_FOLLOWED = "SYMLINK_NOT_FOLLOWED"
    SYMLINK_LOOP = "SYMLINK_LOOP"
    BROKEN_SYMLINK = "BROKEN_SYMLINK"
    SPECIAL_FILE = "SPECIAL_FILE"


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What to walk and how to name it: filters, symlinks and the rename policy.

    Shared by ``scan`` and ``migrate``. ``include`` and ``exclude`` are globs: a pattern without
    ``/`` is matched against an item's name, one with ``/`` against its path relative to SOURCE
    (``*`` may then span folders). ``exclude`` applies to files and folders (an excluded folder
    is not entered); ``include``, when given, keeps only the files that match one pattern.
    ``skip_extensions`` holds lower-case extensions without the dot, compared with a file's last
    extension (SPMT's semantics). ``modified_after`` / ``created_after`` keep files whose time is
    later; a file whose birth time the filesystem does not report is kept.
    """

    follow_symlinks: bool = False
    skip_hidden: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    skip_extensions: frozenset[str] = field(default_factory=frozenset)
    modified_after: dt.datetime | None = None
    created_after: dt.datetime | None = None
    rename: RenamePolicy = field(default_factory=RenamePolicy)
    target: TargetPrefix | None = None

    @staticmethod
    def parse_extensions(value: str) -> frozenset[str]:
        """``"txt:mp3"`` or ``".TXT, mp3"`` -> ``{"txt", "mp3"}``; raises :class:`UsageError`."""
        parts = [p.strip().lstrip(".").lower() for p in value.replace(",", ":").split(":")]
        if not value.strip() or any(not p or "." in p or "/" in p for p in parts):
            raise UsageError(
                f"--skip-extensions: expected extensions separated by ':' or ',', got {value!r}"
            )
        return frozenset(parts)

    @staticmethod
    def parse_date(flag: str, value: str) -> dt.datetime:
        """``yyyy-mm-dd`` (SPMT's format) or an ISO 8601 time; a naive time is local time."""
        try:
            when = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(f"{flag}: expected a date like 2024-01-31, got {value!r}") from None
        return when if when.tzinfo else when.astimezone()


class WalkItem(NamedTuple):
    """One entry of a folder, as the walk saw it (``lstat``, or ``stat`` through a followed link).

    ``parts`` is the path relative to SOURCE, one name per level (names that are not UTF-8 hold
    surrogate escapes, PEP 383). ``birthtime`` is ``None`` where the filesystem does not report
    it. ``filtered`` names the filter that left the item out; ``problem`` / ``detail`` say why
    the item cannot be taken as it is. A named tuple: millions are made, and it is cheap.
    """

    parts: tuple[str, ...]
    is_dir: bool
    size: int
    mtime: float
    ctime: float
    birthtime: float | None
    inode: int
    device: int
    is_symlink: bool = False
    hidden: bool = False
    filtered: str | None = None
    problem: WalkProblem | None = None
    detail: str | None = None

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def relpath(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True, slots=True)
class Listing:
    """One folder's children, sorted by name; ``problem`` is set when it could not be listed
    (then ``children`` is empty). ``parts`` is ``()`` for SOURCE itself."""

    parts: tuple[str, ...]
    children: list[WalkItem]
    problem: WalkProblem | None = None
    detail: str | None = None


def _error_text(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


_USE_FDS = os.scandir in os.supports_fd and os.open in os.supports_dir_fd
_ACCESS_DIR_FD = os.access in os.supports_dir_fd


def _open_dir(name: str, parent: int | None, follow_symlinks: bool) -> int:
    """A read-only fd on a folder, relative to its parent's fd (so no path length limit
    applies), without touching its access time where the OS allows it."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)  # a folder swapped for a link since its listing
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            return os.open(name, flags | noatime, dir_fd=parent)
        except PermissionError:
            pass  # O_NOATIME needs ownership of the folder; fall back to a plain open
    return os.open(name, flags, dir_fd=parent)


class _Filters:
    def __init__(self, options: ScanOptions) -> None:
        self.options = options
        self.modified_after = options.modified_after.timestamp() if options.modified_after else None
        self.created_after = options.created_after.timestamp() if options.created_after else None

    @staticmethod
    def _matches(patterns: tuple[str, ...], name: str, relpath: str) -> bool:
        for pattern in patterns:
            subject = relpath if "/" in pattern else name
            if fnmatch.fnmatchcase(subject, pattern):
                return True
        return False

    def reason(self, item: WalkItem) -> str | None:
        """The filter that leaves ``item`` out, or ``None``."""
        opts = self.options
        if opts.skip_hidden and item.hidden:
            return "hidden"
        if opts.exclude and self._matches(opts.exclude, item.name, item.relpath):
            return "exclude"
        if item.is_dir:
            return None
        if opts.include and not self._matches(opts.include, item.name, item.relpath):
            return "include"
        if opts.skip_extensions:
            stem, dot, ext = item.name.rpartition(".")
            if dot and stem and ext.lower() in opts.skip_extensions:
                return "skip-extensions"
        if self.modified_after is not None and item.mtime <= self.modified_after:
            return "modified-after"
        if (
            self.created_after is not None
            and item.birthtime is not None
            and item.birthtime <= self.created_after
        ):
            return "created-after"
        return None


def _hidden_attribute(st: os.stat_result, path: str, dir_fd: int | None, probe: bool) -> bool:
    attributes = getattr(st, "st_file_attributes", None)  # Windows
    if attributes is not None:
        return bool(attributes & _FILE_ATTRIBUTE_HIDDEN)
    if not probe:
        return False
    try:
        if dir_fd is not None:
            # getxattr has no dir_fd form; go through /proc's view of the open folder.
            path = f"/proc/self/fd/{dir_fd}/{path}"
        raw = os.getxattr(path, _CIFS_ATTRIBUTES, follow_symlinks=False)
    except OSError:
        return False
    if raw.startswith(b"0x"):
        value = int(raw.rstrip(b"\0"), 16)
    else:
        value = int.from_bytes(raw[:4], "little")
    return bool(value & _FILE_ATTRIBUTE_HIDDEN)


def _supports_cifs_attributes(root: str) -> bool:
    if not hasattr(os, "getxattr"):
        return False
    try:
        os.getxattr(root, _CIFS_ATTRIBUTES)
    except OSError:
        return False
    return True


def check_source(root: str | os.PathLike[str]) -> str:
    """SOURCE as a ``str`` path, after checking it is a readable folder; raises SourceError."""
    path = os.fspath(root)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SourceError(f"SOURCE {path!r} does not exist") from None
    except OSError as exc:
        raise SourceError(f"SOURCE {path!r} cannot be read: {_error_text(exc)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SourceError(f"SOURCE {path!r} is not a folder")
    try:
        with os.scandir(path) as it:
            next(it, None)
    except OSError as exc:
        raise SourceError(f"SOURCE {path!r} cannot be listed: {_error_text(exc)}") from None
    return path


def walk_listings(
    root: str | os.PathLike[str],
    options: ScanOptions,
    *,
    start: tuple[str, ...] = (),
    prune: Callable[[tuple[str, ...]], bool] | None = None,
) -> Iterator[Listing]:
    """Yield SOURCE's listing, then each folder's, depth first, children sorted by name.

    Every folder item that is not filtered out and has no problem gets a listing of its own
    (possibly with a problem: unreadable, or a symlink loop). Raises :class:`SourceError` only
    when SOURCE itself is not a readable folder. Where the OS allows it each folder is opened
    relative to its parent, so trees deeper than the OS path limit are walked whole; one file
    descriptor per level of the current path stays open.

    `start` walks only the sub-tree at those parts below SOURCE (paths, filters and listings
    stay relative to SOURCE). `prune(parts)` is asked before each folder below `start` is
    listed, at the moment its turn comes: True leaves that folder and everything in it out of
    this walk (a cluster hands it to another unit of work).
    """
    base = check_source(root)
    filters = _Filters(options)
    probe_cifs = options.skip_hidden and _supports_cifs_attributes(base)
    # Pending folders, last one next. For the current path: each ancestor's (device, inode),
    # so that a followed link back to an ancestor is caught, and its open fd.
    stack: list[tuple[str, ...]] = [start]
    chain: list[tuple[int, int]] = []
    fds: list[int] = []
    try:
        for depth in range(len(start)):  # the folders above `start`: opened, not listed
            try:
                if _USE_FDS:
                    name = start[depth - 1] if depth else base
                    fds.append(_open_dir(name, fds[-1] if depth else None, options.follow_symlinks))
                    folder_stat = os.fstat(fds[-1])
                else:
                    folder_stat = os.stat(os.path.join(base, *start[:depth]))
            except OSError as exc:
                yield Listing(start, [], WalkProblem.UNREADABLE_FOLDER, _error_text(exc))
                return
            chain.append((folder_stat.st_dev, folder_stat.st_ino))
        while stack:
            parts = stack.pop()
            if prune is not None and parts != start and prune(parts):
                continue
            depth = len(parts)
            del chain[depth:]
            for fd in fds[depth:]:
                os.close(fd)
            del fds[depth:]
            try:
                if _USE_FDS:
                    fd = _open_dir(
                        parts[-1] if parts else base,
                        fds[-1] if parts else None,
                        options.follow_symlinks,
                    )
                    fds.append(fd)
                    folder_stat = os.fstat(fd)
                else:
                    folder_stat = os.stat(os.path.join(base, *parts))
            except OSError as exc:
                yield Listing(parts, [], WalkProblem.UNREADABLE_FOLDER, _error_text(exc))
                continue
            folder_id = (folder_stat.st_dev, folder_stat.st_ino)
            if folder_id in chain:
                yield Listing(parts, [], WalkProblem.SYMLINK_LOOP, "link leads back to a parent")
                continue
            chain.append(folder_id)
            try:
                children = _list(base, parts, fds[-1] if _USE_FDS else None, options, filters,
                                 probe_cifs)  # fmt: skip
            except OSError as exc:
                yield Listing(parts, [], WalkProblem.UNREADABLE_FOLDER, _error_text(exc))
                continue
            yield Listing(parts, children)
            for child in reversed(children):
                if child.is_dir and child.filtered is None and child.problem is None:
                    stack.append(child.parts)
    finally:
        for fd in fds:
            os.close(fd)


def _list(
    base: str,
    parts: tuple[str, ...],
    fd: int | None,
    options: ScanOptions,
    filters: _Filters,
    probe_cifs: bool,
) -> list[WalkItem]:
    with os.scandir(os.path.join(base, *parts) if fd is None else fd) as entries:
        items = [
            _item(entry, parts, options, filters, fd, probe_cifs)
            for entry in entries
            if entry.name not in (".", "..")
        ]
    items.sort(key=lambda item: item.name)
    return items


def _item(
    entry: os.DirEntry[str],
    parts: tuple[str, ...],
    options: ScanOptions,
    filters: _Filters,
    dir_fd: int | None,
    probe_cifs: bool,
) -> WalkItem:
    child_parts = (*parts, entry.name)
    ref = entry.name if dir_fd is not None else entry.path
    problem: WalkProblem | None = None
    detail: str | None = None
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError as exc:
        return WalkItem(
            child_parts, False, 0, 0.0, 0.0, None, 0, 0,
            problem=WalkProblem.UNREADABLE_FILE, detail=_error_text(exc),
        )  # fmt: skip
    is_link = stat.S_ISLNK(st.st_mode)
    if is_link:
        if not options.follow_symlinks:
            problem, detail = WalkProblem.SYMLINK_NOT_FOLLOWED, "symbolic link not followed"
        else:
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError as exc:
                problem, detail = WalkProblem.BROKEN_SYMLINK, _error_text(exc)
    is_dir = stat.S_ISDIR(st.st_mode)
    if problem is None and not is_dir and not stat.S_ISREG(st.st_mode):
        problem, detail = WalkProblem.SPECIAL_FILE, "not a regular file or folder"
    if problem is None and not is_dir:
        readable = (
            os.access(ref, os.R_OK, dir_fd=dir_fd)
            if dir_fd is not None and _ACCESS_DIR_FD
            else os.access(entry.path, os.R_OK)
        )
        if not readable:
            problem, detail = WalkProblem.UNREADABLE_FILE, "permission denied"
    hidden = entry.name.startswith(".") or (
        options.skip_hidden and _hidden_attribute(st, ref, dir_fd, probe_cifs)
    )
    # Positional, in WalkItem's field order: the walk makes one per entry.
    item = WalkItem(
        child_parts,
        is_dir and problem is None,
        st.st_size if stat.S_ISREG(st.st_mode) else 0,
        st.st_mtime,
        st.st_ctime,
        getattr(st, "st_birthtime", None),
        st.st_ino,
        st.st_dev,
        is_link,
        hidden,
        None,
        problem,
        detail,
    )
    reason = filters.reason(item)
    return item if reason is None else item._replace(filtered=reason)


def walk(root: str | os.PathLike[str], options: ScanOptions | None = None) -> Iterator[WalkItem]:
    """Every item under SOURCE (filtered ones included, marked), listing by listing."""
    for listing in walk_listings(root, options or ScanOptions()):
        yield from listing.children
