"""The small files of ArchivedFiles.xml: members of zip archives stored as content blobs.

sp-dev-docs `docs/apis/migration-content-package.md` ("Archive small files for performance")
and `migration-manifest.md` ("ArchivedFiles.xml") are terse; this module implements the
reading docs/emulator.md states ("Archives of small files"):

- an archive is the content container's blob named by its `ArchivedFile`'s `Name`, read as
  any content blob is (latest snapshot, MD5 of the stored bytes, decrypted with the job's key
  and the blob's IV), refused when it is stored in more than 10 MiB ("10 MB maximum"); its
  `Checksum` is the QuickXorHash (base64) of its plaintext, the zip file;
- a member is named exactly by the `FileValue` and holds the file's plain bytes, stored
  ("Don't compress individual files") or deflated; once encrypted (AES-CBC, PKCS7-padded) it
  must be under 100 KB ("Less than 100 kb after encryption"), taken as 102,400 bytes.

`Archives.read` raises ImportError_, a JobError for the file being imported: an archive that
cannot be used fails each of its files, a member that cannot be used fails its own. An archive
is read once per job, when a file first needs it, into a temporary file deleted when the job
ends; memory holds one download part of it and that part's plaintext at a time (at worst the
whole archive twice, 2 x 10 MiB), and each member as it is read.
"""

from __future__ import annotations

import contextlib
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from typing import IO, Self

from azure.storage.blob import ContainerClient

from sharelift.emulator.migration.blobs import BlobProblem, stream_blob
from sharelift.emulator.migration.package import ArchivedFile
from sharelift.emulator.migration.target import E_ITEM, ImportError_
from sharelift.quickxorhash import QuickXorHash

MAX_ARCHIVE_BYTES = 10 * 1024 * 1024
"""An archive's largest stored size ("Archive file size limit: 10 MB maximum")."""
MEMBER_ENCRYPTED_LIMIT = 100 * 1024
"""A member's encrypted size must be less than this ("Less than 100 kb after encryption")."""
E_NOT_FOUND = -2147024894  # HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND), as for a missing blob
_READABLE = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


def encrypted_size(size: int) -> int:
    """The size of `size` bytes once encrypted with AES-CBC and PKCS7 padding (which adds a
    whole block to a whole number of blocks)."""
    return (size // 16 + 1) * 16


class Archives:
    """The archives of one job's package, read from `content` (decrypted with `key` when the
    job is encrypted) as their files need them; close it (or use it as a context manager) to
    delete what was read."""

    def __init__(
        self, archives: Sequence[ArchivedFile], content: ContainerClient, key: bytes | None
    ) -> None:
        self._content = content
        self._key = key
        self._holder = {value: archive for archive in archives for value in archive.members}
        self._open: dict[ArchivedFile, zipfile.ZipFile] = {}
        self._failed: dict[ArchivedFile, tuple[str, int]] = {}
        self._spools: list[IO[bytes]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for zipped in self._open.values():
            zipped.close()
        for spool in self._spools:
            spool.close()
        self._open.clear()
        self._spools.clear()

    def holds(self, file_value: str) -> bool:
        """Whether ArchivedFiles.xml lists `file_value` (its content is then a member)."""
        return file_value in self._holder

    def read(self, file_value: str) -> bytes:
        """The bytes of the member `file_value` of the archive that lists it; raises
        ImportError_ (the archive unusable, the member absent, too large or corrupt)."""
        archive = self._holder[file_value]
        zipped = self._zip(archive)
        where = f"'{file_value}' of archive '{archive.name}'"
        try:
            info = zipped.getinfo(file_value)
        except KeyError:
            raise ImportError_(
                f"'{file_value}' is not in archive '{archive.name}'", code=E_NOT_FOUND
            ) from None
        sealed = encrypted_size(info.file_size)
        if sealed >= MEMBER_ENCRYPTED_LIMIT:
            raise ImportError_(
                f"{where} has {info.file_size} bytes, {sealed} encrypted: an archived file "
                f"must be less than {MEMBER_ENCRYPTED_LIMIT} bytes after encryption",
                code=E_ITEM,
            )
        if info.compress_type not in _READABLE:
            raise ImportError_(
                f"{where} is compressed with method {info.compress_type}; only stored and "
                "deflated members are read",
                code=E_ITEM,
            )
        try:
            # Bounded: the reader stops at the member's declared size (checked above), and a
            # member longer than declared fails its CRC.
            with zipped.open(info) as member:
                return member.read()
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as exc:
            raise ImportError_(f"{where} is corrupt: {exc}", code=E_ITEM) from exc

    def _zip(self, archive: ArchivedFile) -> zipfile.ZipFile:
        """The archive opened, read now if it was not yet; raises ImportError_, the same
        each time for an archive that could not be used."""
        if archive in self._open:
            return self._open[archive]
        if archive in self._failed:
            message, code = self._failed[archive]
            raise ImportError_(message, code=code)
        try:
            zipped = self._download(archive)
        except ImportError_ as exc:
            self._failed[archive] = (str(exc), exc.code)
            raise
        self._open[archive] = zipped
        return zipped

    def _download(self, archive: ArchivedFile) -> zipfile.ZipFile:
        name = archive.name
        hasher = QuickXorHash()
        with contextlib.ExitStack() as on_failure:
            spool = on_failure.enter_context(tempfile.TemporaryFile())

            def sink(part: bytes) -> None:
                hasher.update(part)
                spool.write(part)

            try:
                stream_blob(self._content, name, self._key, sink, max_size=MAX_ARCHIVE_BYTES)
            except BlobProblem as exc:
                raise ImportError_(f"archive '{name}' cannot be used: {exc}", exc.code) from exc
            if not archive.checksum:
                raise ImportError_(f"archive '{name}' has no Checksum", code=E_ITEM)
            if hasher.b64digest() != archive.checksum:
                raise ImportError_(f"archive '{name}' does not match its Checksum", code=E_ITEM)
            try:
                zipped = zipfile.ZipFile(spool)
            except zipfile.BadZipFile as exc:
                message = f"archive '{name}' is not a zip file: {exc}"
                raise ImportError_(message, code=E_ITEM) from exc
            on_failure.pop_all()  # the spool lives until close()
        self._spools.append(spool)
        return zipped
