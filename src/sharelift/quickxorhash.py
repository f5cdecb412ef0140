"""QuickXorHash, the content hash OneDrive for Business and SharePoint report for every file.

The algorithm (Microsoft, "QuickXorHash",
https://learn.microsoft.com/onedrive/developer/code-snippets/quickxorhash): a 160-bit register;
byte ``i`` of the input is XORed in at bit ``(11 * i) mod 160``, wrapping round the register;
the register is read out as 20 little-endian bytes, and the 64-bit little-endian length of the
input is XORed into bytes 12-19. Graph carries the digest base64-encoded
(``file.hashes.quickXorHash``).

Why this implementation is fast: ``11 * 160 = 0 (mod 160)``, so every byte whose offset is
congruent modulo 160 lands on the same bit position. :meth:`QuickXorHash.update` therefore only
XOR-folds the input into a 160-byte block (vectorised with numpy, at memory speed), and the 160
folded bytes are spread into the register once, when the digest is read. The result is exact for
any split of the input into ``update`` calls.
"""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:  # collections.abc.Buffer is Python >= 3.12
    from typing_extensions import Buffer

__all__ = ["DIGEST_SIZE", "QuickXorHash", "b64", "quickxor_file", "quickxor_file_b64"]

DIGEST_SIZE = 20
_WIDTH_BITS = 160
_SHIFT = 11
_BLOCK = 160  # bytes after which the bit positions repeat: 11 * 160 = 0 (mod 160)
_REGISTER_MASK = (1 << _WIDTH_BITS) - 1
# Large inputs are folded as rows of this many bytes (a multiple of 160 and of 8) viewed as
# uint64, so numpy XORs whole machine words of a contiguous row per step.
_ROW = _BLOCK * 64
_SMALL = 256  # below this, a plain Python loop beats numpy's per-call overhead
_FILE_CHUNK = 8 * 1024 * 1024


class QuickXorHash:
    """A hashlib-style QuickXorHash object.

    ``update(data)`` accepts any bytes-like object; ``digest()`` / ``hexdigest()`` /
    ``b64digest()`` may be called at any time and do not change the state; ``copy()`` returns an
    independent clone. ``digest_size`` is 20 and ``name`` is ``"quickxorhash"``.
    """

    name = "quickxorhash"
    digest_size = DIGEST_SIZE
    block_size = _BLOCK

    __slots__ = ("_folded", "_length")

    def __init__(self, data: Buffer = b"") -> None:
        self._folded = bytearray(_BLOCK)
        self._length = 0
        if data:
            self.update(data)

    def update(self, data: Buffer) -> None:
        """Feed ``data``; any split of the input gives the same digest."""
        view = memoryview(data)
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        view = view.cast("B")
        n = len(view)
        if n == 0:
            return
        start = self._length % _BLOCK
        self._length += n
        folded = self._folded
        if n < _SMALL:
            pos = start
            for byte in view:
                folded[pos] ^= byte
                pos += 1
                if pos == _BLOCK:
                    pos = 0
            return
        # Imported here, not at the top: a run that hashes nothing (a re-run of unchanged
        # files, a scan) starts without paying for numpy's import (~0.1 s).
        import numpy as np

        acc = np.frombuffer(folded, dtype=np.uint8)
        arr = np.frombuffer(view, dtype=np.uint8)
        # Head: bring the running offset back to a multiple of 160.
        head = (_BLOCK - start) % _BLOCK
        if head:
            acc[start:] ^= arr[:head]
            arr = arr[head:]
        # Body: whole rows as uint64 words, then whole 160-byte blocks, then the tail.
        rows = len(arr) // _ROW
        if rows:
            body = arr[: rows * _ROW].view(np.uint64).reshape(rows, _ROW // 8)
            row = np.bitwise_xor.reduce(body, axis=0)
            acc ^= np.bitwise_xor.reduce(row.reshape(-1, _BLOCK // 8), axis=0).view(np.uint8)
            arr = arr[rows * _ROW :]
        blocks = len(arr) // _BLOCK
        if blocks:
            acc ^= np.bitwise_xor.reduce(arr[: blocks * _BLOCK].reshape(blocks, _BLOCK), axis=0)
            arr = arr[blocks * _BLOCK :]
        if len(arr):
            acc[: len(arr)] ^= arr

    def _register(self) -> int:
        """Spread the folded block into the 160-bit register (rotations wrap at bit 160)."""
        register = 0
        for index, byte in enumerate(self._folded):
            if byte:
                register ^= byte << ((_SHIFT * index) % _WIDTH_BITS)
        # A byte placed at bit 153..159 spills past bit 159; the spill wraps round to bit 0.
        return (register & _REGISTER_MASK) ^ (register >> _WIDTH_BITS)

    def digest(self) -> bytes:
        """The 20-byte digest of everything fed so far."""
        out = bytearray(self._register().to_bytes(DIGEST_SIZE, "little"))
        length = (self._length & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little")
        for i, byte in enumerate(length):
            out[DIGEST_SIZE - 8 + i] ^= byte
        return bytes(out)

    def hexdigest(self) -> str:
        """The digest as 40 lowercase hex digits."""
        return self.digest().hex()

    def b64digest(self) -> str:
        """The digest base64-encoded, as Graph reports it in ``file.hashes.quickXorHash``."""
        return b64(self.digest())

    def copy(self) -> Self:
        """An independent clone of this hash object."""
        clone = type(self).__new__(type(self))
        clone._folded = bytearray(self._folded)
        clone._length = self._length
        return clone

    @property
    def length(self) -> int:
        """How many bytes have been fed."""
        return self._length


def b64(digest: bytes) -> str:
    """Base64 text of a digest, as Graph carries it."""
    return base64.b64encode(digest).decode("ascii")


def _opener(path: str, flags: int) -> int:
    """``open()`` opener that avoids touching the access time where the OS allows it."""
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            return os.open(path, flags | noatime)
        except PermissionError:
            pass  # O_NOATIME needs file ownership (or CAP_FOWNER); fall back to a plain open
    return os.open(path, flags)


def quickxor_file(path: str | os.PathLike[str], chunk_size: int = _FILE_CHUNK) -> bytes:
    """The QuickXorHash digest of a file's content, read once, read-only, in chunks.

    Raises ``OSError`` when the file cannot be opened or read.
    """
    hasher = QuickXorHash()
    view = memoryview(bytearray(chunk_size))
    with open(path, "rb", buffering=0, opener=_opener) as stream:
        while n := stream.readinto(view):
            hasher.update(view[:n])
    return hasher.digest()


def quickxor_file_b64(path: str | os.PathLike[str]) -> str:
    """The base64 QuickXorHash of a file, comparable with Graph's ``quickXorHash``."""
    return b64(quickxor_file(path))
