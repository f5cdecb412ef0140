"""A worker's heartbeat: one thread, with a state store connection of its own.

Every `interval` seconds it

- renews the lease of the unit the worker runs, with the unit's progress counters; when the
  store says the lease is another's now, the unit is stopped at once (`Current.on_lost`);
- writes the worker's row (`idle` or `busy`, the unit, the end of a throttle window it met);
- shares the tenant's budget: each live worker (seen within three heartbeats) spends 1/N of
  it while it is low (`Pacer.set_share`), and a throttle window another worker met is opened
  here too (`Pacer.hold`): SharePoint throttles the app, whichever machine sends;
- hands the broker the units of its queues that are due (`StateStore.due_units`): new ones
  whose maker could not, those handed back, those whose owner's lease lapsed, and, once this
  worker has been idle for `republish_after` seconds, those still waiting (the broker lost
  their message).

Fencing does not rest on this thread alone: a store that hangs would hang it. The unit's own
watchdog (runner.py) stops the unit when no renewal succeeded for two thirds of the lease, so
that the unit has stopped before its lease can lapse and another worker take it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sharelift.graph.pacer import Pacer
from sharelift.progress import Tally
from sharelift.state import StateStore, open_state

log = logging.getLogger("sharelift.cluster")

Publisher = Callable[[int, str], None]


@dataclass
class Current:
    """The unit a worker runs now, as its heartbeat sees it."""

    unit_id: int
    loop: asyncio.AbstractEventLoop
    on_lost: Callable[[], None]
    """Stops the unit at once; called on `loop`."""
    renewed: float = field(default_factory=time.monotonic)
    """When (monotonic) the last renewal that succeeded was sent."""
    lost: bool = False
    tally: Tally | None = None
    pacer: Pacer | None = None

    def counters(self) -> dict[str, int]:
        t = self.tally
        if t is None:
            return {}
        return {
            "files_total": t.files_total,
            "bytes_total": max(t.bytes_total, 0),
            "files_done": t.files_done,
            "bytes_done": max(t.bytes_done, 0),
            "files_skipped": t.files_skipped,
            "files_failed": t.files_failed,
        }

    def throttled_for(self) -> float:
        if self.tally is None:
            return 0.0
        return max(0.0, self.tally.throttled_until - time.monotonic())


def worker_name() -> str:
    """This process's name among the workers (and as a lease's owner): HOST:PID."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat(threading.Thread):
    """The heartbeat thread of one worker process (see the module docstring)."""

    def __init__(
        self,
        state_url: str,
        name: str,
        queues: Sequence[str],
        publish: Publisher,
        *,
        interval: float,
        ttl: float,
        republish_after: float,
    ) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.state_url = state_url
        self.worker = name
        self.queues = list(queues)
        self.publish = publish
        self.interval = interval
        self.ttl = ttl
        self.republish_after = republish_after
        self.current: Current | None = None
        self.idle_since = time.monotonic()
        self._stopping = threading.Event()
        self._wake = threading.Event()

    def run_unit(self, current: Current | None) -> None:
        """The worker starts `current` (None: it has ended it); beats at once."""
        self.current = current
        if current is None:
            self.idle_since = time.monotonic()
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout=30)

    def run(self) -> None:
        store: StateStore | None = None
        while True:
            try:
                if store is None:
                    store = open_state(self.state_url)
                self.beat(store, stopping=self._stopping.is_set())
            except Exception as exc:  # the store is away: the unit's watchdog fences it
                log.warning("heartbeat of %s failed: %s", self.worker, exc)
                if store is not None:
                    store.close()
                store = None
            if self._stopping.is_set():
                break
            self._wake.wait(self.interval)
            self._wake.clear()
        if store is not None:
            store.close()

    def beat(self, store: StateStore, *, stopping: bool = False) -> None:
        current = self.current
        if current is not None and not current.lost:
            sent = time.monotonic()
            if store.renew_lease(current.unit_id, self.worker, self.ttl, **current.counters()):
                current.renewed = sent
            else:
                current.lost = True
                log.warning("unit %d: the lease is another worker's now", current.unit_id)
                current.loop.call_soon_threadsafe(current.on_lost)
        now = store.store_time()
        throttled = current.throttled_for() if current is not None else 0.0
        store.beat_worker(
            self.worker,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self.queues,
            status="stopped" if stopping else ("busy" if current is not None else "idle"),
            unit_id=current.unit_id if current is not None else None,
            throttled_until=now + throttled if throttled > 0 else 0.0,
            lease_ttl=self.ttl,
        )
        if stopping:
            return
        self._share_budget(store, now, current)
        waiting = current is None and time.monotonic() - self.idle_since > self.republish_after
        for unit in store.due_units(
            self.queues, republish_after=self.republish_after, waiting=waiting
        ):
            try:
                self.publish(unit.id, unit.queue)
            except Exception as exc:  # the broker is away from here: an idle worker retries
                log.warning("unit %d: not handed to the broker (%s)", unit.id, exc)

    def _share_budget(self, store: StateStore, now: float, current: Current | None) -> None:
        if current is None or current.pacer is None:
            return
        live = [
            w
            for w in store.workers()
            if w.status != "stopped" and now - w.seen_at < 3 * self.interval
        ]
        share = 1.0 / max(1, len(live))
        window = max((w.throttled_until - now for w in live if w.name != self.worker), default=0)
        pacer = current.pacer

        def apply() -> None:
            pacer.set_share(share)
            pacer.hold(window)

        current.loop.call_soon_threadsafe(apply)
