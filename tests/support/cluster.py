"""A cluster on this machine for tests: `sharelift worker` processes, and waiting that gives up
only when nothing moves.

A machine of two cores shared with other test runs may be several times slower than usual, so
no wait here has a fixed length: `wait_for` fails only after `stall` seconds in which neither
its condition came true nor its `progress` reading changed (the units' counters and statuses,
the bytes the emulator accepted...). A slow machine makes a test slow, never red; a cluster
that is stuck still fails it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sharelift.state import StateStore


class Worker:
    """One `sharelift worker` process, in a session of its own (so that a kill takes all)."""

    def __init__(
        self,
        index: int,
        broker: str,
        state: str,
        emulator: Path,
        logs: Path,
        *,
        lease: float,
        heartbeat: float = 0.5,
        extra: Sequence[str] = (),
    ) -> None:
        self.log = logs / f"worker{index}.log"
        command = [
            sys.executable, "-m", "sharelift", "worker", "--emulator", str(emulator),
            "--state", state, "--broker", broker, "--lease-ttl", str(lease),
            "--heartbeat", str(heartbeat), "--visibility-timeout", str(2 * lease), *extra,
        ]  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    @property
    def name(self) -> str:
        return f"{os.uname().nodename}:{self.process.pid}"

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def wait_for(
    condition: Callable[[], Any],
    what: str,
    *,
    progress: Callable[[], object] | None = None,
    stall: float = 90.0,
) -> Any:
    """Poll `condition` until it gives something true, and return that. Raises AssertionError
    naming `what` once `stall` seconds passed in which `progress()` (when given) gave the same
    value each time it was read."""
    seen = progress() if progress is not None else None
    moved = time.monotonic()
    while not (found := condition()):
        if progress is not None:
            now = progress()
            if now != seen:
                seen, moved = now, time.monotonic()
        if time.monotonic() - moved > stall:
            raise AssertionError(f"timed out waiting for {what} (nothing moved for {stall:.0f} s)")
        time.sleep(0.1)
    return found


def follow(process: subprocess.Popen[Any], state: str, what: str) -> int:
    """Wait for `process` (a `migrate --broker`) to end while the cluster of the store at
    `state` makes progress; its exit code."""
    from sharelift.state import open_state

    with open_state(state, readonly=True) as store:
        wait_for(lambda: process.poll() is not None, what, progress=lambda: cluster_progress(store))
    return process.wait()


def cluster_progress(store: StateStore) -> object:
    """What moves while a cluster works: each unit's status, attempts and counters, and the
    workers' states."""
    units = tuple(
        (u.id, u.status, u.attempts, u.owner, u.files_done, u.bytes_done) for u in store.units()
    )
    return units, tuple((w.name, w.status, w.unit_id) for w in store.workers())
