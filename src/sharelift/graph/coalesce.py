"""Single requests gathered into groups for `$batch`: the one grouping helper of a round.

Graph answers up to `MAX_BATCH` (20) requests in one JSON `$batch`
(https://learn.microsoft.com/graph/json-batching): the round trips shrink twentyfold, the
resource units do not (each inner request is charged as if it came alone). A round has two
streams of such requests, upload sessions opened ahead (`graph/sessions.py`) and new folders
(`engine/folders.py`); both group them with a `Coalescer`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from sharelift.graph.client import MAX_BATCH

T = TypeVar("T")


class Coalescer(Generic[T]):
    """Items put one by one, handed out in groups of at most `size`, in the order they came.

    A group leaves as soon as it is full, or `linger` seconds after its first item arrived, or
    at once when the coalescer is closed: a lone request waits at most `linger` for company.
    With `capacity`, `put` waits while that many items wait to be handed out (backpressure:
    memory stays bounded); `put_nowait` never waits and raises RuntimeError when full. One
    consumer iterates `groups()`, which ends once the coalescer is closed and empty.
    """

    def __init__(self, *, linger: float, size: int = MAX_BATCH, capacity: int | None = None):
        if not 1 <= size <= MAX_BATCH:
            raise ValueError(f"a group holds 1 to {MAX_BATCH} items, not {size}")
        self.linger = linger
        self.size = size
        self.capacity = capacity
        self._waiting: deque[tuple[float, T]] = deque()
        """Items not handed out yet, with the loop time each arrived."""
        self._arrived = asyncio.Event()
        self._space = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._waiting)

    async def put(self, item: T) -> None:
        """Add `item`, waiting first while the coalescer is at its capacity."""
        while self.capacity is not None and len(self._waiting) >= self.capacity:
            self._space.clear()
            await self._space.wait()
        self.put_nowait(item)

    def put_nowait(self, item: T) -> None:
        """Add `item` now. Raises RuntimeError when closed or at capacity."""
        if self._closed:
            raise RuntimeError("the coalescer is closed")
        if self.capacity is not None and len(self._waiting) >= self.capacity:
            raise RuntimeError("the coalescer is full")
        self._waiting.append((asyncio.get_running_loop().time(), item))
        self._arrived.set()

    def close(self) -> None:
        """No more items: what waits leaves at once, then `groups()` ends."""
        self._closed = True
        self._arrived.set()

    def take_all(self) -> list[T]:
        """Remove and return every item not handed out yet (to give up on them)."""
        items = [item for _, item in self._waiting]
        self._waiting.clear()
        self._space.set()
        return items

    async def groups(self) -> AsyncIterator[list[T]]:
        """Each group as it leaves; ends when closed and empty."""
        loop = asyncio.get_running_loop()
        while True:
            while not self._waiting and not self._closed:
                self._arrived.clear()
                await self._arrived.wait()
            if not self._waiting:
                return
            deadline = self._waiting[0][0] + self.linger
            while len(self._waiting) < self.size and not self._closed:
                left = deadline - loop.time()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    async with asyncio.timeout(left):
                        await self._arrived.wait()
                except TimeoutError:
                    break
            if not self._waiting:  # taken away meanwhile (`take_all`)
                continue
            count = min(self.size, len(self._waiting))
            group = [self._waiting.popleft()[1] for _ in range(count)]
            self._space.set()
            yield group
