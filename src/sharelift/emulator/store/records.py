"""The store's records: what a user, site, drive, driveItem, version and upload session are.

Every record is a frozen snapshot read from the database; changing the tenant goes through the
role objects (`Store.tenant`, `Store.items`, …), which hand back fresh records. The row mappers
(`*_COLS` and `*_from_row`) keep the column order of each SELECT next to the record it fills.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Identity = dict[str, Any]
"""A Graph identitySet: {"user": {...}} and/or {"application": {...}}."""

SYSTEM_IDENTITY: Identity = {"user": {"displayName": "System Account"}}


@dataclass(frozen=True)
class Stamp:
    """Who writes an item, and the fileSystemInfo times it is to show.

    `by` becomes the item's lastModifiedBy, and its createdBy when the write creates it.
    `fs_created` / `fs_modified` are the client's times (fileSystemInfo); None means the time
    of the write (and, when new content replaces a file, that the creation time stays)."""

    by: Identity
    fs_created: float | None = None
    fs_modified: float | None = None


@dataclass(frozen=True)
class User:
    id: str
    upn: str
    display_name: str
    licensed: bool
    drive_id: str | None


@dataclass(frozen=True)
class Site:
    id: str
    """`{hostname},{siteGuid},{webGuid}` as Graph spells site ids."""
    web_url: str
    hostname: str
    path: str
    """Server-relative path: "/" for the root site, "/sites/Team", "/personal/megan_contoso_com"."""
    display_name: str
    name: str
    created: float
    drives: list[str] = field(default_factory=list)
    """Drive ids; the default library first."""


@dataclass(frozen=True)
class Drive:
    id: str
    site_id: str
    name: str
    drive_type: str
    """"business" for a OneDrive, "documentLibrary" for a site library."""
    web_url: str
    owner_upn: str | None
    is_default: bool
    quota_total: int
    used: int
    deleted: int
    root_id: str
    created: float


DRIVE_COLS = (
    "id, site_id, name, drive_type, web_url, owner_upn, is_default, quota_total, used, "
    "deleted, root_id, created"
)


def drive_from_row(r: tuple[Any, ...]) -> Drive:
    return Drive(
        id=r[0],
        site_id=r[1],
        name=r[2],
        drive_type=r[3],
        web_url=r[4],
        owner_upn=r[5],
        is_default=bool(r[6]),
        quota_total=r[7],
        used=r[8],
        deleted=r[9],
        root_id=r[10],
        created=r[11],
    )


@dataclass(frozen=True)
class Item:
    id: str
    drive_id: str
    parent_id: str | None
    name: str
    is_folder: bool
    size: int
    mime: str | None
    qxh: str | None
    """base64 quickXorHash of the current content (files only)."""
    content_key: str | None
    guid: str
    etag_n: int
    ctag_n: int
    version_n: int
    created: float
    modified: float
    fs_created: float
    fs_modified: float
    created_by: Identity
    modified_by: Identity
    child_count: int
    deleted: bool
    seq: int
    """The change-log position of the item's last change (see `changes.ChangeLog`)."""

    @property
    def is_root(self) -> bool:
        return self.parent_id is None


ITEM_COLS = (
    "id, drive_id, parent_id, name, is_folder, size, mime, qxh, content_key, guid, etag_n, "
    "ctag_n, version_n, created, modified, fs_created, fs_modified, created_by, modified_by, "
    "child_count, deleted, seq"
)


def item_from_row(r: tuple[Any, ...]) -> Item:
    return Item(
        id=r[0],
        drive_id=r[1],
        parent_id=r[2],
        name=r[3],
        is_folder=bool(r[4]),
        size=r[5],
        mime=r[6],
        qxh=r[7],
        content_key=r[8],
        guid=r[9],
        etag_n=r[10],
        ctag_n=r[11],
        version_n=r[12],
        created=r[13],
        modified=r[14],
        fs_created=r[15],
        fs_modified=r[16],
        created_by=json.loads(r[17]),
        modified_by=json.loads(r[18]),
        child_count=r[19],
        deleted=bool(r[20]),
        seq=r[21],
    )


def new_item_id() -> str:
    """A new driveItem id: ODB item ids are 34 characters, "01" + 32 base32 characters."""
    return "01" + base64.b32encode(os.urandom(20)).decode("ascii")[:32]


@dataclass(frozen=True)
class Version:
    item_id: str
    n: int
    size: int
    content_key: str
    modified: float
    modified_by: Identity

    @property
    def label(self) -> str:
        """OneDrive for Business names major versions "1.0", "2.0", …"""
        return f"{self.n}.0"


@dataclass(frozen=True)
class Content:
    """A file body staged in the store's tmp folder, with its size and quickXorHash (base64).

    Whoever commits it (`Files.put`, `Files.replace`) takes the file over: it is moved into the
    store or removed, whatever the outcome."""

    path: Path
    size: int
    qxh: str


@dataclass(frozen=True)
class Session:
    id: str
    drive_id: str
    parent_id: str
    name: str
    item_id: str | None
    """Set when the session replaces a known item's content (`/items/{id}/createUploadSession`)."""
    conflict: str
    fs_created: float | None
    fs_modified: float | None
    file_size: int | None
    """Declared size (item.fileSize), else fixed by the first fragment's Content-Range total."""
    received: int
    expires: float
    defer_commit: bool
    created_by: Identity

    @property
    def stamp(self) -> Stamp:
        """Who opened the session and the times they asked for: what the commit will write."""
        return Stamp(self.created_by, self.fs_created, self.fs_modified)


SESSION_COLS = (
    "id, drive_id, parent_id, name, item_id, conflict, fs_created, fs_modified, file_size, "
    "received, expires, defer_commit, created_by"
)


def session_from_row(r: tuple[Any, ...]) -> Session:
    return Session(
        id=r[0],
        drive_id=r[1],
        parent_id=r[2],
        name=r[3],
        item_id=r[4],
        conflict=r[5],
        fs_created=r[6],
        fs_modified=r[7],
        file_size=r[8],
        received=r[9],
        expires=r[10],
        defer_commit=bool(r[11]),
        created_by=json.loads(r[12]),
    )
