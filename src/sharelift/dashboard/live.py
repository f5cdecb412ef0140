"""One reader of the state store for every open page.

`Live` takes a reading (`readings.Reader`: a few small queries) at most once per `interval`,
whatever the number of pages open: page loads get the latest reading when it is fresh enough,
and every server-sent-event stream waits for the next one. It reads only while someone watches
(a stream is open, or a page was just loaded); with nobody watching, the store is not read.
What a page reads beyond the reading (a job's packages) is read `on_demand`: once per change
the reading shows, for every page that asks.

The store is opened read-only, once, in one thread of its own (an SQLite connection belongs to
one thread), and reads there, so the event loop never waits on the disk. With SQLite in WAL
mode a reader never blocks the run that writes, and each reading is its own short transaction,
so the run's checkpoints are not held back. A PostgreSQL store (a cluster's) is read through
one read-only connection in autocommit mode. A store that does not exist yet (a dashboard
started before its first run) is looked for again at each reading; a store that failed while
being read (a database restarted, a link cut) is closed and opened again at the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sharelift.dashboard.readings import Reader, Reading
from sharelift.dashboard.text import shown
from sharelift.state import StateError, StateStore, open_state
from sharelift.urls import hide_password

log = logging.getLogger("sharelift.dashboard")
T = TypeVar("T")
ON_DEMAND_KEPT = 32
"""On-demand readings kept (one per job page and filter being watched)."""


class Live:
    """The latest reading of the store at `location` (a path, or a `postgresql://` URL),
    shared (see the module docstring)."""

    def __init__(self, location: str | os.PathLike[str], *, interval: float = 2.0) -> None:
        self.location = os.fspath(location)
        self.shown = hide_password(self.location)
        """The store as a page names it: a URL without its password."""
        self.interval = interval
        self.problem = ""
        """Why the last reading could not be taken ("" when it could)."""
        self.readings = 0
        """How many readings were taken (for tests and measurements)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-store")
        self._store: StateStore | None = None
        self._reader = Reader()
        self._latest: Reading | None = None
        self._taken = -float("inf")
        self._lock = asyncio.Lock()
        self._tick = asyncio.Event()
        """Set when a reading was taken, then replaced by a new one."""
        self._watchers = 0
        self._poller: asyncio.Task[None] | None = None
        self._on_demand: OrderedDict[Hashable, tuple[object, Any]] = OrderedDict()
        self._on_demand_lock = asyncio.Lock()
        self.closing = asyncio.Event()

    # --- reading -------------------------------------------------------------------------------

    async def in_store_thread(self, work: Callable[[StateStore], T]) -> T | None:
        """Run `work(store)` in the store's thread (None when there is no store yet)."""

        def run() -> T | None:
            store = self._open()
            if store is None:
                return None
            try:
                return work(store)
            except Exception as exc:
                # Not the reading's fault but the store's (its connection broke): open it
                # again at the next reading, and say why there is none now.
                if not self._usable(store):
                    self._drop(f"the state store {self.shown} failed: {shown(str(exc))}")
                    return None
                raise

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    def _open(self) -> StateStore | None:
        if self._store is None:
            try:
                self._store = open_state(self.location, readonly=True)
            except StateError as exc:
                self.problem = str(exc)
                return None
        return self._store

    @staticmethod
    def _usable(store: StateStore) -> bool:
        try:
            store.jobs()
        except Exception:
            return False
        return True

    def _drop(self, problem: str) -> None:
        log.warning("%s", problem)
        self.problem = problem
        store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()

    async def latest(self) -> Reading | None:
        """A reading at most `interval` old (taken now if the last one is older)."""
        async with self._lock:
            if time.monotonic() - self._taken >= self.interval:
                await self._take()
        return self._latest

    async def _take(self) -> None:
        reading = await self.in_store_thread(self._reader.read)
        self._taken = time.monotonic()
        if reading is not None:
            self.problem = ""
            self.readings += 1
            self._latest = reading
        self._notify()

    async def on_demand(
        self, key: Hashable, version: object, work: Callable[[StateStore], T]
    ) -> T | None:
        """`work(store)` for `key`, read again only when `version` differs from the one it
        was last read for: pages asking the same thing of the same reading share one read
        (None when there is no store yet)."""
        async with self._on_demand_lock:
            kept = self._on_demand.get(key)
            if kept is not None and kept[0] == version:
                self._on_demand.move_to_end(key)
                return kept[1]  # type: ignore[no-any-return]
            value = await self.in_store_thread(work)
            self._on_demand[key] = (version, value)
            self._on_demand.move_to_end(key)
            while len(self._on_demand) > ON_DEMAND_KEPT:
                self._on_demand.popitem(last=False)
            return value

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    # --- watching ------------------------------------------------------------------------------

    async def watch(self) -> AsyncIterator[Reading | None]:
        """The latest reading now, then each new one, until the server closes."""
        self._watchers += 1
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            yield await self.latest()
            while not self.closing.is_set():
                await self._tick.wait()
                if self.closing.is_set():
                    return
                yield self._latest
        finally:
            self._watchers -= 1

    async def _poll(self) -> None:
        while self._watchers > 0 and not self.closing.is_set():
            try:
                await self.latest()
            except Exception:  # a reading that failed is tried again at the next tick
                log.exception("reading the state store failed")
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        """End the streams and the poller; close the store."""
        self.closing.set()
        self._notify()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

        def shut() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=False)
