"""Reading source files: read-only opens, fragment buffers, read-ahead, change detection.

Everything a mover needs to read a file faithfully (DESIGN.md invariants 1 and 2):

- `open_readonly` opens without touching the access time where the OS allows, and never waits
  for a writer (a file swapped for a FIFO since the walk).
- `FragmentBuffer` is a worker's reusable buffer; `ReadAhead` reads a file's fragments in order
  into two of them, the next while the current one is sent, hashing every byte in file order.
- `read_into` raises `SourceChanged` when the file became shorter; `changed` tells whether an
  open file's size or modification time moved since it was first looked at. A copy is only
  faithful when neither happened.

Reads run in worker threads (`asyncio.to_thread`), so the event loop never waits on a disk.
"""

from __future__ import annotations

import asyncio
import os

from sharelift.quickxorhash import QuickXorHash


class SourceChanged(Exception):
    """The file changed while it was read; the upload is not a faithful copy."""


def open_readonly(path: str) -> int:
    """Open for reading without touching atime where the OS lets us (invariant 1).

    O_NONBLOCK: a file replaced by a FIFO since the walk must not wait for a writer (it would
    hold the event loop); it has no effect on reading regular files.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    noatime = getattr(os, "O_NOATIME", 0)
    if noatime:
        try:
            return os.open(path, flags | noatime)
        except PermissionError:
            pass  # O_NOATIME needs the file's owner (or CAP_FOWNER): fall back
    return os.open(path, flags)


class FragmentBuffer:
    """One upload worker's fragment buffer, reused for every fragment it sends, so a large
    file costs no allocation per fragment (and the allocator keeps no freed 10 MiB blocks
    around per thread: 8 workers x 10 MiB fragments peaked at 558 MiB RSS with a fresh
    `bytes` per read, against ~80 MiB of buffers). It grows to the largest fragment asked
    for, at most `size`: a worker that only meets small files keeps a small buffer."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buffer = bytearray()

    def view(self, length: int) -> memoryview:
        """The first `length` bytes of the buffer (`length` <= size)."""
        if length > len(self._buffer):
            # Grow in one step to the next power of two (or the fragment size): a worker
            # sees a few sizes, not one allocation per new largest file.
            self._buffer = bytearray(min(self.size, max(length, 1 << (length - 1).bit_length())))
        return memoryview(self._buffer)[:length]


def read_into(fd: int, offset: int, view: memoryview, hasher: QuickXorHash | None) -> None:
    """Fill `view` from `offset` (hashing the bytes); raises SourceChanged on a short read."""
    got = 0
    length = view.nbytes
    while got < length:
        n = os.preadv(fd, [view[got:]], offset + got)
        if n <= 0:
            raise SourceChanged("the file became shorter while it was read")
        got += n
    if hasher is not None:
        hasher.update(view)


def hash_range(fd: int, length: int, hasher: QuickXorHash, buffer: FragmentBuffer) -> None:
    """Feed the first `length` bytes of the file to `hasher`, a buffer at a time."""
    offset = 0
    while offset < length:
        view = buffer.view(min(buffer.size, length - offset))
        read_into(fd, offset, view, hasher)
        offset += view.nbytes


async def hash_file(fd: int, size: int, buffer: FragmentBuffer) -> str:
    """The base64 quickXorHash of the file's first `size` bytes, read in a thread."""
    hasher = QuickXorHash()
    await asyncio.to_thread(hash_range, fd, size, hasher, buffer)
    return hasher.b64digest()


def changed(fd: int, before: os.stat_result) -> bool:
    """True when the open file's size or modification time moved since `before`."""
    after = os.fstat(fd)
    return (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns)


class ReadAhead:
    """Reads one file's fragments in order, the next while the current one is sent.

    Two buffers take turns: `read()` returns the fragment (read now, or already read by the
    prefetch the caller started after the previous one) and `prefetch()` starts reading the
    next one in a thread into the other buffer, which the previous fragment's upload no
    longer needs. A source share that reads at about the speed the service takes bytes thus
    keeps both busy. The hasher sees the bytes in file order, as reads are never reordered.
    A prefetch that is not wanted (the upload started over, or stopped) is waited for and
    dropped: `settle()` must run before the file is closed.
    """

    def __init__(self, fd: int, buffers: tuple[FragmentBuffer, FragmentBuffer]) -> None:
        self._fd = fd
        self._buffers = buffers
        self._turn = 0
        self._pending: tuple[int, int, QuickXorHash, memoryview, asyncio.Future[None]] | None
        self._pending = None

    def _next_view(self, length: int) -> memoryview:
        buffer = self._buffers[self._turn]
        self._turn ^= 1
        return buffer.view(length)

    async def read(self, offset: int, length: int, hasher: QuickXorHash) -> memoryview:
        pending, self._pending = self._pending, None
        if pending is not None:
            at, size, pending_hasher, view, future = pending
            if (at, size) == (offset, length) and pending_hasher is hasher:
                await future
                return view
            await settle(future)
        view = self._next_view(length)
        await asyncio.to_thread(read_into, self._fd, offset, view, hasher)
        return view

    def prefetch(self, offset: int, length: int, hasher: QuickXorHash) -> None:
        view = self._next_view(length)
        future = asyncio.get_running_loop().run_in_executor(
            None, read_into, self._fd, offset, view, hasher
        )
        self._pending = (offset, length, hasher, view, future)

    async def settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await settle(pending[4])


async def settle(future: asyncio.Future[None]) -> None:
    """Wait until a read in a thread has ended (it cannot be interrupted, and its file must
    stay open until then), even through a cancellation, which is passed on afterwards; what
    the read raised is dropped."""
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait([future])
        except asyncio.CancelledError:
            cancelled = True
    if not future.cancelled():
        future.exception()
    if cancelled:
        raise asyncio.CancelledError
