"""A round's counters and their samples, saved while it runs.

The round's one `Tally` is written into its state-store row (what `status`, the dashboard and
`sharelift report` read) and a sample of it is added (the reports' and the dashboard's
throughput chart), at the start, every couple of seconds and at the end. The pacer's figures
(concurrency, throttle signals, time left in a throttle window) are copied into the tally on
the same beat, for the live views. A part of a cluster's round only does the latter: its
counters are its unit's, saved by the unit's owner with its heartbeat.
"""

from __future__ import annotations

import asyncio
import logging

from sharelift.graph.pacer import Pacer
from sharelift.progress import Tally
from sharelift.state import RoundSample, StateStore
from sharelift.state.records import utcnow

log = logging.getLogger("sharelift.engine")


class RoundSaver:
    """Saves `tally` into the round's row and samples; reads the tenant's `pacer`."""

    def __init__(self, store: StateStore, tally: Tally, pacer: Pacer) -> None:
        self._store = store
        self._tally = tally
        self._pacer = pacer
        self._throttled_seen = 0

    def save(self, round_id: int) -> None:
        """The round's counters and a sample of them."""
        t = self._tally
        pacer = self._pacer.state()
        throttled, waited = pacer.throttled, pacer.throttle_wait
        self._store.update_round(
            round_id,
            files_total=t.files_total,
            bytes_total=max(t.bytes_total, 0),
            files_done=t.files_done,
            bytes_done=max(t.bytes_done, 0),
            files_skipped=t.files_skipped,
            files_failed=t.files_failed,
            throttled=throttled,
            throttle_wait=waited,
        )
        self._store.add_round_sample(
            round_id,
            RoundSample(
                utcnow(),
                files_done=t.files_done,
                bytes_done=max(t.bytes_done, 0),
                files_skipped=t.files_skipped,
                files_failed=t.files_failed,
                throttled=throttled,
                throttle_wait=waited,
            ),
        )

    async def every(self, interval: float, round_id: int, *, save: bool = True) -> None:
        """Until cancelled: every `interval` seconds the pacer's figures into the tally (and
        a log line when throttling begins again), then, when `save`, the round saved."""
        while True:
            await asyncio.sleep(interval)
            pacer = self._pacer.state()
            self._tally.concurrency = pacer.concurrency
            self._tally.throttle_events = pacer.throttled
            self._tally.retries = pacer.retries
            if pacer.throttled_for > 0:
                loop_time = asyncio.get_running_loop().time()
                self._tally.throttled_until = loop_time + pacer.throttled_for
                if pacer.throttled > self._throttled_seen:
                    log.info(
                        "throttled by Microsoft 365 (%d signals so far): every request waits "
                        "%.0f s, concurrency %d",
                        pacer.throttled,
                        pacer.throttled_for,
                        pacer.concurrency,
                    )
            self._throttled_seen = pacer.throttled
            if save:
                self.save(round_id)
