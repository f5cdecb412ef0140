"""Small files packed into zip archives: ArchivedFiles.xml ("archive small files for
performance", sp-dev-docs `docs/apis/migration-content-package.md` and `migration-manifest.md`).

Each content blob costs the service a read and the client two Azure requests (the upload and
its snapshot), so a share of small files spends its time on requests, not bytes. The
Migration API can instead take up to two zip archives per package, each listed in the
manifest package's ArchivedFiles.xml with its QuickXorHash, and import the files in them
that Manifest.xml names. The page's prerequisites, and how they are read here:

- an archive of 10 MB at most: its stored (encrypted) blob is kept within 10,000,000 bytes;
- two archives per package at most: files that do not fit go as blobs of their own;
- the archive encrypted: it is a content blob like any other (AES-256-CBC, IV in its
  metadata, Content-MD5, a snapshot), and its members are the files' own bytes;
- each file under 100 KB after encryption: a member's padded size stays below 100,000 bytes;
- individual files not compressed: members are stored (ZIP_STORED), not deflated;
- `Checksum`: the QuickXorHash of the archive's plaintext (the zip as built, before it is
  encrypted), as the manifest's `Checksum` of a file is that of its plaintext.

A member is named by its file's `FileValue` (`{file id}.dat`), and Manifest.xml describes it
as any other file: its `MD5Hash` is then the MD5 of the member's bytes. The archive is built
in memory (at most 10 MB) in a fixed order with fixed member times, so that the same files
make the same archive: a run taking a package up again rebuilds it and finds it stored
(`blob.stored_already`), uploading nothing.

The page is terse and no public client documents more; the feature is therefore opt-in
(`archive_small_files`), and docs/migration-api.md says so.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

from sharelift.migration_api.crypto import encrypted_size
from sharelift.quickxorhash import QuickXorHash

ARCHIVE_BYTES = 10_000_000
"""An archive's stored (encrypted) size at most: "10 MB maximum"."""
MEMBER_BYTES = 100_000
"""A member's size after encryption stays below this: "less than 100 kb after encryption"."""
ARCHIVES_PER_PACKAGE = 2
""""Two maximum"."""
_ZIP_END = 22
_ZIP_PER_MEMBER = 30 + 46
"""A stored member's local header and central directory entry, besides its name twice."""
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def fits(size: int) -> bool:
    """True when a file of `size` bytes may go into an archive."""
    return encrypted_size(size) < MEMBER_BYTES


def _zip_cost(name: str, size: int) -> int:
    return _ZIP_PER_MEMBER + 2 * len(name.encode("utf-8")) + size


def group(members: Sequence[tuple[str, int]]) -> list[list[str]]:
    """The archives a package's small files make: `members` are (FileValue, size) of files
    that `fit`; at most ARCHIVES_PER_PACKAGE archives, each within ARCHIVE_BYTES once
    encrypted, filled in name order. Files left out go as blobs of their own."""
    archives: list[list[str]] = []
    current: list[str] = []
    used = _ZIP_END
    for name, size in sorted(members):
        cost = _zip_cost(name, size)
        if current and encrypted_size(used + cost) > ARCHIVE_BYTES:
            archives.append(current)
            if len(archives) == ARCHIVES_PER_PACKAGE:
                return archives
            current, used = [], _ZIP_END
        current.append(name)
        used += cost
    if current:
        archives.append(current)
    return archives


@dataclass(frozen=True)
class Member:
    """A file as packed: the quickXorHash and MD5 (base64) of its bytes, and their size."""

    quick_xor: str
    md5: str
    size: int


class ArchiveWriter:
    """Builds one archive in memory: `add` each member in the order `group` gave, then
    `finish` for the zip's bytes."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._zip = zipfile.ZipFile(self._buffer, "w", zipfile.ZIP_STORED)

    def add(self, name: str, data: bytes) -> Member:
        info = zipfile.ZipInfo(name, _FIXED_TIME)
        info.compress_type = zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        self._zip.writestr(info, data)
        hasher = QuickXorHash()
        hasher.update(data)
        return Member(
            base64.b64encode(hasher.digest()).decode("ascii"),
            base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),  # noqa: S324
            len(data),
        )

    def finish(self) -> bytes:
        self._zip.close()
        data = self._buffer.getvalue()
        if encrypted_size(len(data)) > ARCHIVE_BYTES:
            raise ValueError(f"an archive came to {len(data)} bytes, over the service's 10 MB")
        return data


@dataclass(frozen=True)
class Archive:
    """One archive as ArchivedFiles.xml lists it."""

    name: str
    """Its blob's name in the content container."""
    checksum: str
    """The QuickXorHash (base64) of the zip before encryption."""
    members: tuple[str, ...]
    """The FileValue of each file in it."""


def archive_name(index: int) -> str:
    """The blob name of a package's `index`th archive (a package has its own containers)."""
    return f"archive-{index}.zip"


__all__ = [
    "ARCHIVES_PER_PACKAGE",
    "ARCHIVE_BYTES",
    "MEMBER_BYTES",
    "Archive",
    "ArchiveWriter",
    "Member",
    "archive_name",
    "fits",
    "group",
]
