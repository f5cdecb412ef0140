"""AES-256-CBC as the Migration API wants it, and the key kept private until its job ends.

Every blob of an encrypted job, the manifests included, is encrypted with the job's 256-bit key
and an IV of its own, which travels base64-encoded in the blob's metadata `IV`; the service
uses the same key for what it writes back (queue messages, import logs). sp-dev-docs
`docs/apis/migration-azure.md` ("Encryption"), `migration-api-encryption.md`.

The documents name .NET's `AesCryptoServiceProvider`, whose padding is PKCS7; they do not say
so outright (REFERENCE-migration-api.md, open question 1), and PKCS7 is what we write.

The key is written to its own file (0600, created exclusively) beside the state store: the
store names the file, never the key, so that no report, log or record holds it. The file is
deleted once the job that needs it has ended.
"""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 32
BLOCK = 16


class KeyFileError(Exception):
    """A key file is missing or not a 256-bit key."""


def new_key() -> bytes:
    """A fresh random 256-bit key (for the user's own containers; provided containers come
    with theirs)."""
    return os.urandom(KEY_BYTES)


def new_iv() -> bytes:
    """A fresh random IV (one per blob: never reused under a key)."""
    return os.urandom(BLOCK)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def save_key(path: Path, key: bytes) -> None:
    """Write `key` to `path`, readable by its owner only; an existing file is replaced."""
    if len(key) != KEY_BYTES:
        raise ValueError("an AES-256 key has 32 bytes")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)


def load_key(path: Path) -> bytes:
    """The key saved at `path`; KeyFileError (naming the file, never the key) when it is gone."""
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"the package key {path} cannot be read: {exc.strerror}") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"the package key {path} is not a 256-bit key")
    return key


def delete_key(path: Path) -> None:
    """Forget a key whose job has ended (no error when it is gone already)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class BlobCipher:
    """AES-256-CBC with PKCS7 over a stream: `update` as the bytes come, then `finalize`.

    The cipher buffers a partial block itself, so pieces of any length may be given; the pad
    is added once at the end, without copying the stream through a padder."""

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        self._length = 0

    def update(self, data: bytes | memoryview) -> bytes:
        self._length += len(data)
        return self._encryptor.update(data)

    def finalize(self) -> bytes:
        pad = BLOCK - self._length % BLOCK
        return self._encryptor.update(bytes([pad]) * pad) + self._encryptor.finalize()


def encrypted_size(size: int) -> int:
    """How many bytes `size` bytes become (PKCS7 always adds 1 to 16)."""
    return size + BLOCK - size % BLOCK


def decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    """What the service encrypted with the job's key (logs, queue messages); ValueError when
    the bytes are not a whole AES-CBC message under this key."""
    if not data or len(data) % BLOCK:
        raise ValueError("not an AES-CBC message (its length is not a multiple of 16)")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    plain = decryptor.update(data) + decryptor.finalize()
    pad = plain[-1]
    if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
        raise ValueError("bad padding: the key does not open this message")
    return plain[:-pad]
