"""One delivery of a unit on a worker: claim its lease, run it, end it or hand it back.

    claim     `StateStore.claim_unit`: a live lease elsewhere, or a finished unit, means the
              delivery was a duplicate: back off (the message is acknowledged, nothing done)
    run       the unit's kind (kinds.py), with the heartbeat renewing the lease and a
              watchdog that stops the unit at once when renewals have not succeeded for two
              thirds of the lease (so it stops before another worker may take it over)
    end       `done` or `failed`, then, when no other unit of the round is left, the round's
              finish unit is recorded and handed over (each of two units ending at once sees
              the other's end or is seen by it: the finish unit is made once, by its key)
    hand back the worker stops, or the tenant kept throttling: queued again, due after the
              throttle window, handed to the broker when due

A unit that keeps failing is given up after `max_attempts` leases. Nothing here raises: the
broker's message is acknowledged whatever became of the unit, since the state store, not
the broker, says what is left to do.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

from sharelift.cluster.carving import Publisher
from sharelift.cluster.heartbeat import Current, Heartbeat
from sharelift.cluster.kinds import Ended, LeaseLost, UnitRun
from sharelift.credential import Credential
from sharelift.errors import ShareliftError, UnavailableError
from sharelift.state import NewUnit, StateStore, UnitRecord, open_state

log = logging.getLogger("sharelift.cluster")

RETRY_LATER = 60.0
"""Seconds before a unit handed back for a passing failure (throttling, sign-in) is due."""


@dataclass
class WorkerContext:
    """What every unit run on this worker shares."""

    name: str
    state_url: str
    credential: Credential
    heartbeat: Heartbeat
    publish: Publisher
    ttl: float
    max_attempts: int = 10
    running: UnitRun | None = None
    loop: asyncio.AbstractEventLoop | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        """The worker is asked to stop (SIGTERM): the unit it runs stops gracefully."""
        self.stopping.set()
        run, loop = self.running, self.loop
        if run is not None and loop is not None:
            loop.call_soon_threadsafe(run.request_stop)


def execute(ctx: WorkerContext, unit_id: int) -> str:
    """Run one delivery of unit `unit_id`; returns a line saying what became of it."""
    try:
        return asyncio.run(_execute(ctx, unit_id))
    except Exception as exc:  # the store is away: the unit is due again once its lease lapses
        log.exception("unit %d", unit_id)
        return f"unit {unit_id}: not run ({type(exc).__name__}: {exc})"


async def _execute(ctx: WorkerContext, unit_id: int) -> str:
    with open_state(ctx.state_url) as store:
        if ctx.stopping.is_set():
            return f"unit {unit_id}: not taken, the worker is stopping"
        sent = time.monotonic()
        unit = store.claim_unit(unit_id, ctx.name, ctx.ttl)
        if unit is None:
            return f"unit {unit_id}: backed off ({_why_not(store, unit_id)})"
        label = f"unit {unit.id} ({unit.kind} {unit.display_path})"
        if unit.attempts > ctx.max_attempts:
            given_up = Ended("failed", f"given up after {ctx.max_attempts} attempts")
            await _end(ctx, store, unit, given_up, {})
            return f"{label}: failed, given up"
        loop = asyncio.get_running_loop()
        current = Current(unit.id, loop, on_lost=lambda: None, renewed=sent)
        run = UnitRun(store, unit, ctx.name, ctx.credential, ctx.publish, current)
        work = asyncio.create_task(run.run())

        def stop_now() -> None:
            work.cancel()

        current.on_lost = stop_now
        ctx.running, ctx.loop = run, loop
        if ctx.stopping.is_set():
            run.request_stop()
        ctx.heartbeat.run_unit(current)
        watchdog = asyncio.create_task(_watch(current, ctx.ttl, work))
        started = time.monotonic()
        ended = Ended("failed", "no end")
        try:
            ended = await work
        except (asyncio.CancelledError, LeaseLost):
            current.lost = True
        except UnavailableError as exc:
            ended = Ended("released", str(exc), delay=max(RETRY_LATER, current.throttled_for()))
        except ShareliftError as exc:
            started_round = unit.round_id is not None or run.engine is not None
            ended = Ended("released", str(exc), delay=RETRY_LATER) if started_round else Ended(
                "failed", str(exc)
            )  # fmt: skip
        except Exception as exc:  # a defect: the unit is given up, the worker goes on
            log.exception("%s", label)
            ended = Ended("failed", f"{type(exc).__name__}: {exc}")
        finally:
            watchdog.cancel()
            ctx.heartbeat.run_unit(None)
            ctx.running = None
        if current.lost:
            return f"{label}: stopped, its lease is another worker's"
        await _end(ctx, store, unit, ended, current.counters())
        took = time.monotonic() - started
        files = current.counters().get("files_done", 0)
        return f"{label}: {ended.status} in {took:.1f} s, {files} files" + (
            f" ({ended.message})" if ended.message else ""
        )


def _why_not(store: StateStore, unit_id: int) -> str:
    unit = store.unit(unit_id)
    if unit is None:
        return "no such unit"
    if unit.finished:
        return f"{unit.status} already"
    if unit.owner:
        return f"leased by {unit.owner}"
    return "not due yet"


async def _watch(current: Current, ttl: float, work: asyncio.Task[Ended]) -> None:
    """Stop the unit at once when the lease may be lapsing: no renewal succeeded for two
    thirds of it. The unit then stops well before another worker can take it over."""
    while not current.lost:
        await asyncio.sleep(min(1.0, ttl / 10))
        if time.monotonic() - current.renewed > ttl * 2 / 3:
            log.warning("unit %d: no heartbeat for %.0f s; stopping it", current.unit_id, ttl)
            current.lost = True
    work.cancel()


async def _end(
    ctx: WorkerContext, store: StateStore, unit: UnitRecord, ended: Ended, counters: dict[str, int]
) -> None:
    if ended.status == "released":
        if (
            store.release_unit(
                unit.id, ctx.name, delay=ended.delay, message=ended.message, **counters
            )
            and ended.delay <= 0
        ):
            await _hand_over(ctx, store, unit.id, unit.queue)
        return
    if not store.end_unit(unit.id, ctx.name, ended.unit_status, ended.message, **counters):
        return
    round_id = ended.round_id or unit.round_id
    if unit.kind == "finish" or round_id is None:
        return
    if any(not u.finished for u in store.units(round_id=round_id) if u.kind != "finish"):
        return
    made = store.add_unit(
        NewUnit(
            key=f"round-{round_id}:finish",
            run=unit.run,
            kind="finish",
            queue=unit.queue,
            spec=ended.shared or unit.spec,
            job_id=ended.job_id or unit.job_id,
            round_id=round_id,
        )
    )
    if made is not None and made[1]:
        await _hand_over(ctx, store, made[0], unit.queue)


async def _hand_over(ctx: WorkerContext, store: StateStore, unit_id: int, queue: str) -> None:
    try:
        await asyncio.to_thread(ctx.publish, unit_id, queue)
    except Exception as exc:  # the broker is away: a worker's heartbeat hands it over later
        log.warning("unit %d: not handed to the broker now (%s)", unit_id, exc)
        return
    store.mark_published([unit_id])
