"""The tenant pacer on a fake clock: throttle windows, RateLimit headers, AIMD, limiter."""

from __future__ import annotations

import asyncio
import email.utils

import httpx
import pytest

from sharelift.graph.pacer import Pacer, parse_retry_after

pytestmark = pytest.mark.anyio

WALL0 = 1_700_000_000.0


class FakeClock:
    """Virtual time: sleep(d) moves the clock to (time of the call + d), never backwards."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, target)


def make_pacer(clock: FakeClock, **kwargs: object) -> Pacer:
    options: dict[str, object] = {"max_concurrency": 8, "random": lambda: 1.0}
    options.update(kwargs)
    return Pacer(
        clock=clock.monotonic,
        wall_clock=clock.wall,
        sleep=clock.sleep,
        **options,  # type: ignore[arg-type]
    )


def headers(**values: str) -> httpx.Headers:
    return httpx.Headers({k.replace("_", "-"): v for k, v in values.items()})


def test_retry_after_in_seconds_dates_and_garbage() -> None:
    assert parse_retry_after("15", WALL0) == 15.0
    assert parse_retry_after(" 2.5 ", WALL0) == 2.5
    assert parse_retry_after("-3", WALL0) == 0.0
    date = email.utils.formatdate(WALL0 + 30, usegmt=True)
    assert parse_retry_after(date, WALL0) == pytest.approx(30.0)
    past = email.utils.formatdate(WALL0 - 30, usegmt=True)
    assert parse_retry_after(past, WALL0) == 0.0
    assert parse_retry_after("soon", WALL0) is None
    assert parse_retry_after("", WALL0) is None
    assert parse_retry_after(None, WALL0) is None
    assert parse_retry_after("nan", WALL0) is None


async def test_429_opens_a_window_that_holds_every_request_of_the_tenant() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock)
    async with pacer.slot() as slot:
        pass
    assert pacer.record(429, headers(Retry_After="15"), started=slot.started) == 15.0
    assert pacer.state().throttled_for == 15.0

    starts: list[float] = []

    async def request() -> None:
        async with pacer.slot():
            starts.append(clock.now)

    await asyncio.gather(request(), request(), request())
    assert starts == [115.0, 115.0, 115.0]
    assert pacer.state().throttled_for == 0.0
    assert pacer.state().throttled == 1


async def test_retry_after_as_http_date() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock)
    when = email.utils.formatdate(clock.wall() + 42, usegmt=True)
    assert pacer.record(503, headers(Retry_After=when), started=None) == pytest.approx(42.0)


@pytest.mark.parametrize(
    ("retry_after", "reset", "expected"), [("10", "30", 30.0), ("30", "10", 30.0)]
)
def test_the_larger_of_retry_after_and_ratelimit_reset_wins(
    retry_after: str, reset: str, expected: float
) -> None:
    clock = FakeClock()
    pacer = make_pacer(clock)
    got = pacer.record(429, headers(Retry_After=retry_after, RateLimit_Reset=reset), started=None)
    assert got == expected


def test_429_without_retry_after_backs_off_exponentially() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, base_delay=2.0)
    assert pacer.record(429, headers(), started=None) == 2.0
    assert pacer.record(429, headers(), started=None) == 4.0
    pacer.record(200, headers(), started=None)
    assert pacer.record(429, headers(), started=None) == 2.0


def test_aimd_halves_once_per_episode_and_grows_after_a_clean_window() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, min_concurrency=2, max_concurrency=8)
    assert pacer.concurrency == 8
    before = clock.now
    clock.now += 1
    pacer.record(429, headers(Retry_After="1"), started=before)
    assert pacer.concurrency == 4
    # Other requests of the same burst, sent before the decrease, do not halve again.
    pacer.record(429, headers(Retry_After="1"), started=before)
    assert pacer.concurrency == 4
    pacer.record(429, headers(Retry_After="1"), started=clock.now)
    assert pacer.concurrency == 2
    pacer.record(429, headers(Retry_After="1"), started=clock.now + 1)
    assert pacer.concurrency == 2  # the floor
    for _ in range(2):
        pacer.record(200, headers(), started=None)
    assert pacer.concurrency == 3
    for _ in range(3 + 4 + 5 + 6 + 7 + 8):
        pacer.record(201, headers(), started=None)
    assert pacer.concurrency == 8  # the ceiling


def test_server_errors_neither_grow_nor_shrink_concurrency() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, initial_concurrency=2)
    for _ in range(10):
        pacer.record(500, headers(), started=None)
    assert pacer.concurrency == 2
    assert pacer.state().throttled == 0


async def test_limiter_admits_at_most_the_current_concurrency() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, max_concurrency=4, initial_concurrency=2)
    release = asyncio.Event()
    peak = 0

    async def request() -> None:
        nonlocal peak
        async with pacer.slot():
            peak = max(peak, pacer.state().in_flight)
            await release.wait()

    tasks = [asyncio.create_task(request()) for _ in range(5)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert pacer.state().in_flight == 2
    # Clean responses raise the limit at runtime; a waiter is admitted at once.
    pacer.record(200, headers(), started=None)
    pacer.record(200, headers(), started=None)
    assert pacer.concurrency == 3
    for _ in range(3):
        await asyncio.sleep(0)
    assert pacer.state().in_flight == 3
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 3
    assert pacer.state().in_flight == 0


async def test_a_cancelled_waiter_gives_nothing_away() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, max_concurrency=1)
    hold = asyncio.Event()

    async def holder() -> None:
        async with pacer.slot():
            await hold.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    hold.set()
    await first
    assert pacer.state().in_flight == 0
    async with pacer.slot():
        assert pacer.state().in_flight == 1


async def test_low_remaining_budget_spreads_request_starts_until_the_reset() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, initial_concurrency=2, max_concurrency=4)
    # 40 of 1000 units left, reset in 10 s: ~20 requests of 2 units -> one start every 0.5 s.
    pacer.record(
        200,
        headers(RateLimit_Limit="1000", RateLimit_Remaining="40", RateLimit_Reset="10"),
        started=None,
    )
    assert pacer.state().budget_low
    starts = []
    for _ in range(3):
        async with pacer.slot():
            starts.append(clock.now)
    assert starts == [100.0, 100.5, 101.0]
    # While the budget is low the concurrency does not grow.
    for _ in range(10):
        pacer.record(200, headers(), started=None)
    assert pacer.concurrency == 2
    # After the reset the pace is lifted.
    clock.now += 10
    assert not pacer.state().budget_low
    async with pacer.slot():
        assert clock.now == 111.0


async def test_zero_remaining_budget_waits_for_the_reset() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock)
    pacer.record(
        200,
        headers(RateLimit_Limit="1000", RateLimit_Remaining="0", RateLimit_Reset="7"),
        started=None,
    )
    async with pacer.slot():
        assert clock.now == 107.0
    assert pacer.state().throttled == 0


async def test_a_window_opened_while_queued_for_a_slot_is_honoured() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, max_concurrency=1)
    started: list[float] = []

    async def first() -> None:
        async with pacer.slot() as slot:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            pacer.record(429, headers(Retry_After="5"), started=slot.started)

    async def second() -> None:
        async with pacer.slot():
            started.append(clock.now)

    await asyncio.gather(first(), second())
    assert started == [105.0]


async def test_a_window_opened_while_waiting_for_the_pace_is_honoured() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, initial_concurrency=2, max_concurrency=2)
    pacer.record(
        200,
        headers(RateLimit_Limit="1000", RateLimit_Remaining="40", RateLimit_Reset="10"),
        started=None,
    )
    started: list[float] = []

    async def first() -> None:
        async with pacer.slot() as slot:
            await asyncio.sleep(0)
            pacer.record(429, headers(Retry_After="5"), started=slot.started)

    async def second() -> None:  # its turn in the pace (100.5) falls inside the window
        async with pacer.slot():
            started.append(clock.now)

    await asyncio.gather(first(), second())
    assert started == [105.0]


async def test_before_retry_counts_and_backs_off_only_when_not_throttled() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, base_delay=0.5, max_delay=4.0)
    await pacer.before_retry(0, throttled=True)
    assert clock.sleeps == []
    await pacer.before_retry(2, throttled=False)
    assert clock.sleeps == [2.0]
    await pacer.before_retry(10, throttled=False)
    assert clock.sleeps == [2.0, 4.0]
    assert pacer.state().retries == 3


def test_backoff_is_jittered_within_half_to_full() -> None:
    low = Pacer(random=lambda: 0.0, base_delay=1.0, max_delay=60.0)
    high = Pacer(random=lambda: 0.999999, base_delay=1.0, max_delay=60.0)
    assert low.retry_delay(3) == 4.0
    assert high.retry_delay(3) == pytest.approx(8.0, rel=1e-5)
    assert high.retry_delay(100) == pytest.approx(60.0, rel=1e-5)


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="min_concurrency"):
        Pacer(min_concurrency=5, max_concurrency=2)
