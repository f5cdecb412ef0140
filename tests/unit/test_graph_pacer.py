"""The tenant pacer on a fake clock: throttle windows, RateLimit headers, AIMD, limiter."""

from __future__ import annotations

import asyncio
import email.utils
import heapq
import itertools
import json
import math

import httpx
import pytest

from sharelift.graph.batch import BatchRequest
from sharelift.graph.client import GraphClient
from sharelift.graph.pacer import Pacer, parse_retry_after, request_units

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


def test_throttle_wait_adds_each_window_once_where_windows_overlap() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock)
    pacer.record(429, headers(Retry_After="10"), started=None)
    clock.now += 4
    pacer.record(503, headers(Retry_After="10"), started=None)  # 4 s on: the window grows by 4
    assert pacer.state().throttle_wait == pytest.approx(14.0)
    clock.now += 30
    pacer.record(429, headers(Retry_After="5"), started=None)
    assert pacer.state().throttle_wait == pytest.approx(19.0)
    assert pacer.state().throttled == 3


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


def test_429_without_retry_after_pauses_briefly_and_never_longer_for_more() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, base_delay=2.0)
    assert pacer.record(429, headers(), started=None) == 2.0
    assert pacer.record(429, headers(), started=None) == 2.0
    assert pacer.state().throttled_for == 2.0


def test_503_without_retry_after_is_no_throttle_window() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock)
    assert pacer.record(503, headers(), started=None) == 0.0
    assert pacer.state().throttled_for == 0.0
    assert pacer.concurrency == 8
    assert pacer.record(503, headers(Retry_After="7"), started=None) == 7.0
    assert pacer.state().throttled_for == 7.0


def test_the_429s_of_one_batch_are_one_signal() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, max_concurrency=8)
    answers = [(429, headers(Retry_After=s)) for s in ("2", "5", "3")] + [(201, headers())]
    assert pacer.record_batch(answers, started=None) == 5.0
    assert pacer.state().throttled_for == 5.0
    assert pacer.state().throttled == 1
    assert pacer.concurrency == 4  # halved once


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
    # 40 of 1000 units left, reset in 10 s: 0.25 s a unit; a request of 2 units starts once
    # its units have accrued, one every 0.5 s.
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
    assert starts == [100.5, 101.0, 101.5]
    # While the budget is low the concurrency does not grow.
    for _ in range(10):
        pacer.record(200, headers(), started=None)
    assert pacer.concurrency == 2
    # After the reset the pace is lifted.
    clock.now += 10
    assert not pacer.state().budget_low
    async with pacer.slot():
        assert clock.now == 111.5


async def test_a_low_budget_is_shared_out_by_resource_units() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock, initial_concurrency=1, max_concurrency=1)
    # 100 units left, reset in 10 s: 0.1 s per unit.
    pacer.record(
        200,
        headers(RateLimit_Limit="1000", RateLimit_Remaining="100", RateLimit_Reset="10"),
        started=None,
    )
    starts = []
    for units in (40.0, 2.0, 1.0, 2.0):  # a $batch of 20 writes, a PUT, a GET, a PUT
        async with pacer.slot(units):
            starts.append(round(clock.now - 100, 6))
    assert starts == [4.0, 4.2, 4.3, 4.5]


async def test_units_started_after_a_response_count_against_its_budget() -> None:
    clock = FakeClock()
    pacer = make_pacer(clock)
    async with pacer.slot(2.0) as reporting:
        pass
    for _ in range(3):  # three $batch requests left after it, before its answer came
        async with pacer.slot(40.0):
            pass
    budget = headers(RateLimit_Limit="1000", RateLimit_Remaining="150", RateLimit_Reset="12")
    pacer.record(200, budget, started=reporting.started, mark=reporting.mark)
    # 150 - 120 = 30 units left for 12 s: 0.4 s per unit.
    starts = []
    for _ in range(2):
        async with pacer.slot(2.0):
            starts.append(clock.now)
    assert starts == [100.8, 101.6]
    # A request of more units than are left waits for the reset.
    async with pacer.slot(40.0):
        assert clock.now == 112.0
    # Had more been started since the report than it left, the tenant waits for the reset.
    clock.now = 100.0
    pacer = make_pacer(clock)
    async with pacer.slot(2.0) as reporting:
        pass
    for _ in range(4):
        async with pacer.slot(40.0):
            pass
    pacer.record(200, budget, started=reporting.started, mark=reporting.mark)
    async with pacer.slot(2.0):
        assert clock.now == 112.0


def test_request_units_follow_sharepoint_pricing() -> None:
    assert request_units("GET", "/v1.0/drives/d/items/i") == 1.0
    assert request_units("get", "/v1.0/drives/d/items/i/children") == 2.0
    assert request_units("GET", "/v1.0/drives/d/root/delta") == 2.0
    assert request_units("GET", "/v1.0/drives/d/root/delta", "token=abc") == 1.0
    assert request_units("POST", "/v1.0/drives/d/items/i:/a.txt:/createUploadSession") == 2.0
    assert request_units("PUT", "/_api/v2.0/drives/d/items/i/uploadSession") == 2.0
    assert request_units("DELETE", "/v1.0/drives/d/items/i") == 2.0
    assert request_units("PATCH", "/v1.0/drives/d/items/i") == 2.0


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
    started: list[float] = []

    async def first() -> None:
        async with pacer.slot() as slot:
            pacer.record(
                200,
                headers(RateLimit_Limit="1000", RateLimit_Remaining="40", RateLimit_Reset="10"),
                started=None,
            )
            await asyncio.sleep(0)
            pacer.record(429, headers(Retry_After="5"), started=slot.started)

    async def second() -> None:  # its turn in the pace (100.5) falls inside the window
        async with pacer.slot():
            started.append(clock.now)

    await asyncio.gather(first(), second())
    assert started == [105.5]  # after the window, still paced: the budget is low


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


class EventClock:
    """Virtual time for many tasks at once: `sleep` parks the caller until the driver moves
    the clock to its wake-up time (earliest first), once every task is parked."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL0 + self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._timers, (self.now + max(0.0, seconds), self._seq, future))
        await future

    async def drive(self, tasks: list[asyncio.Task[None]]) -> None:
        while not all(t.done() for t in tasks):
            for _ in range(20):  # let every runnable task run until it parks
                await asyncio.sleep(0)
            if not self._timers:
                continue
            when, _, future = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            if not future.done():
                future.set_result(None)
        for task in tasks:
            task.result()


class FixedWindowTenant:
    """SharePoint's budget as the emulator keeps it: resource units per fixed window, charged
    on arrival (throttled requests too), RateLimit-* headers from 80% of the budget on."""

    def __init__(self, clock: EventClock, limit: int, window: float) -> None:
        self.clock, self.limit, self.window = clock, limit, window
        self.start, self.used = 0.0, 0
        self.throttled = 0
        self.units_ok = 0

    def charge(self, units: int) -> tuple[int, httpx.Headers]:
        now = self.clock.now
        if now - self.start >= self.window:
            self.start, self.used = now, 0
        self.used += units
        reset = max(1, math.ceil(self.start + self.window - now))
        values: dict[str, str] = {}
        if self.used >= 0.8 * self.limit:
            values = {
                "RateLimit-Limit": str(self.limit),
                "RateLimit-Remaining": str(max(0, self.limit - self.used)),
                "RateLimit-Reset": str(reset),
            }
        if self.used > self.limit:
            self.throttled += 1
            return 429, httpx.Headers({"Retry-After": str(reset), **values})
        self.units_ok += units
        return 200, httpx.Headers(values)


async def test_a_run_of_batches_and_fragments_keeps_within_the_budget() -> None:
    """16 workers sending what a small-file migration sends (a $batch of 20 upload sessions,
    40 units, for every 20 fragment PUTs of 2 units) against a budget of 1,000 units per 15 s:
    after the first warning no request is refused, and the run takes about the budget's time."""
    clock = EventClock()
    tenant = FixedWindowTenant(clock, limit=1000, window=15.0)
    pacer = Pacer(clock=clock.monotonic, wall_clock=clock.wall, sleep=clock.sleep)
    warned = False
    refused_after_warning = 0
    work = [40] + [2] * 20
    work = work * 150  # 3,000 files: 6,000 units in fragments, 6,000 in sessions

    async def worker() -> None:
        nonlocal warned, refused_after_warning
        while work:
            units = work.pop()
            while True:
                async with pacer.slot(units) as slot:
                    status, answer = tenant.charge(units)
                    await clock.sleep(0.06)  # the round trip
                    pacer.record(status, answer, started=slot.started, mark=slot.mark)
                if status == 200:
                    warned = warned or "RateLimit-Remaining" in answer
                    break
                refused_after_warning += warned
                await pacer.before_retry(0, throttled=True)

    tasks = [asyncio.create_task(worker()) for _ in range(16)]
    await clock.drive(tasks)
    assert refused_after_warning == 0, tenant.throttled
    minimum = tenant.units_ok / (1000 / 15.0)
    assert clock.now <= 1.15 * minimum, (clock.now, minimum)


async def test_a_share_of_the_budget_spreads_starts_and_a_held_window_waits() -> None:
    clock = FakeClock()
    alone, shared = make_pacer(clock), make_pacer(clock)
    shared.set_share(0.25)
    low = headers(RateLimit_Limit="1000", RateLimit_Remaining="100", RateLimit_Reset="10")
    for pacer in (alone, shared):
        pacer.record(200, low, started=None)
    # 100 units left for 10 s: alone, 0.1 s a unit; a quarter share, 0.4 s a unit.
    assert alone._reserve_start(2.0) == pytest.approx(0.2)
    assert shared._reserve_start(2.0) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        shared.set_share(0)
    alone.hold(5.0)
    assert alone.state().throttled_for == pytest.approx(5.0)


async def test_a_batch_of_429s_then_an_upload_503_pause_the_tenant_no_longer_than_retry_after() -> (
    None
):
    """A `$batch` answered with fifteen 429s (Retry-After 5 and 2) is one signal, and a 503
    without Retry-After on an upload URL just after it backs off that request alone: through
    the real client, no tenant-wide pause is longer than the largest Retry-After (5 s) plus
    jitter. (Counting every 429 of the batch as one more consecutive throttle, as before, made
    the 503's backoff 2**15 s, capped at 60, for the whole tenant.)"""
    clock = EventClock()
    pacer = Pacer(
        max_concurrency=16, clock=clock.monotonic, wall_clock=clock.wall, sleep=clock.sleep
    )
    starts: list[float] = []
    upload_attempts: list[float] = []
    batches = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal batches
        starts.append(clock.now)
        await clock.sleep(0.05)  # the round trip
        if request.url.path.endswith("$batch"):
            batches += 1
            inner = json.loads(request.content)["requests"]
            responses = []
            for n, entry in enumerate(inner):
                if batches == 1 and n < 15:
                    retry_after = "5" if n % 2 else "2"
                    responses.append(
                        {
                            "id": entry["id"],
                            "status": 429,
                            "headers": {"Retry-After": retry_after},
                            "body": {},
                        }
                    )
                else:
                    responses.append({"id": entry["id"], "status": 201, "body": {}})
            return httpx.Response(200, json={"responses": responses})
        if request.url.host == "contoso-my.sharepoint.com":
            upload_attempts.append(clock.now)
            if len(upload_attempts) == 1:
                return httpx.Response(503)  # no Retry-After
            return httpx.Response(202, json={"nextExpectedRanges": ["327680-"]})
        return httpx.Response(200, json={})

    client = GraphClient(
        token=lambda: "token",
        base_url="https://graph.microsoft.com/v1.0",
        pacer=pacer,
        transport=httpx.MockTransport(answer),
    )

    async def graph_worker() -> None:
        for _ in range(120):
            await client.request("GET", "/me")

    async def batcher() -> None:
        requests = [
            BatchRequest(
                str(n),
                "POST",
                f"/drives/d/items/r:/f{n}:/createUploadSession",
                body={},
                retry_safe=True,
            )
            for n in range(20)
        ]
        answers = await client.batch(requests)
        assert all(a.ok for a in answers)

    async def uploader() -> None:
        await clock.sleep(0.2)  # just after the batch was throttled
        upload = "https://contoso-my.sharepoint.com/personal/megan/_api/v2.0/up?tempauth=x"
        await client.request("PUT", upload, content=b"x" * 10, auth=False)

    tasks = [asyncio.create_task(graph_worker()) for _ in range(8)]
    tasks += [asyncio.create_task(batcher()), asyncio.create_task(uploader())]
    async with client:
        await clock.drive(tasks)
    ordered = sorted(starts)
    longest_pause = max(b - a for a, b in itertools.pairwise(ordered))
    assert longest_pause <= 5.0 + 0.1, longest_pause
    retried_after = upload_attempts[1] - upload_attempts[0]
    assert retried_after <= 4.0 + 0.1, retried_after  # the short backoff, for that request
    assert batches == 2
