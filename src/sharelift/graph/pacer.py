"""One pacer per tenant: it decides every wait before and between Graph requests.

SharePoint Online throttles per app per tenant, counts throttled requests against the budget,
and blocks apps that ignore Retry-After. So all requests to one tenant share one `Pacer`:

- A 429 or 503 opens a *throttle window* for the whole tenant: no request of that tenant starts
  until it closes, not only the request that was refused. Its length is `Retry-After` (seconds
  or an HTTP-date), or `RateLimit-Reset` when that is larger, or exponential backoff when the
  response named no delay.
- `RateLimit-Limit/-Remaining/-Reset` (sent once an app has used 80% of its one-minute budget)
  slow requests down before a 429: while the remaining budget is under `low_budget_fraction`
  of the limit, request starts are spread evenly over the time left until the reset, and at
  zero remaining the tenant waits for the reset.
- Concurrency adapts, AIMD as in TCP: halve on a 429/503 (once per throttling episode: responses
  to requests started before the last decrease do not halve again), grow by one after a full
  window of clean responses, always within [min_concurrency, max_concurrency].
- Server errors and dropped connections back off exponentially with jitter, for the one request.

https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online

Time and sleep are injected (`clock`, `wall_clock`, `sleep`, `random`) so tests run on a fake
clock. Invariant 7: code outside this module never sleeps to wait for Graph.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import math
import random as random_module
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

THROTTLE_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class PacerState:
    """A snapshot for progress displays.

    `throttled_for` is how many seconds the current throttle window has left (0 when none is
    open); `throttled` counts 429/503 responses seen and `retries` the retries taken.
    """

    concurrency: int
    in_flight: int
    throttled_for: float
    throttled: int
    retries: int
    budget_low: bool


@dataclass(frozen=True, slots=True)
class Slot:
    """One admitted request; `started` (pacer clock) tells the AIMD which episode it belongs to."""

    started: float


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date.

    `now` is the wall-clock time (seconds since the epoch) an HTTP-date is measured from.
    Returns None for a missing or unreadable value, and never a negative number.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


class Pacer:
    """Admission, throttle windows, pre-emptive slow-down, backoff and adaptive concurrency.

    Use `async with pacer.slot() as slot:` around each HTTP exchange, then `record()` the
    response; before a retry call `before_retry()`. One instance per tenant, shared by every
    GraphClient that talks to it; it is bound to one event loop.

    Memory: constant (a deque of waiting tasks).
    """

    def __init__(
        self,
        *,
        min_concurrency: int = 1,
        max_concurrency: int = 16,
        initial_concurrency: int | None = None,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        low_budget_fraction: float = 0.1,
        units_per_request: float = 2.0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        if not 1 <= min_concurrency <= max_concurrency:
            raise ValueError("need 1 <= min_concurrency <= max_concurrency")
        self.min_concurrency = min_concurrency
        self.max_concurrency = max_concurrency
        start = max_concurrency if initial_concurrency is None else initial_concurrency
        self._limit = min(max(start, min_concurrency), max_concurrency)
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._low_budget_fraction = low_budget_fraction
        # Resource units a typical request costs (REFERENCE: 1 for a GET, 2 for writes/lists).
        self._units_per_request = units_per_request
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._random = random

        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._throttled_until = 0.0
        self._last_decrease = -math.inf
        self._clean = 0
        self._consecutive_throttles = 0
        self._spacing = 0.0
        self._spacing_until = 0.0
        self._next_start = 0.0
        self._throttled = 0
        self._retries = 0

    # -- what progress displays read -------------------------------------------------------

    @property
    def concurrency(self) -> int:
        """How many requests may be in flight at once right now."""
        return self._limit

    def now(self) -> float:
        """The pacer's clock (monotonic seconds)."""
        return self._clock()

    def state(self) -> PacerState:
        """A consistent snapshot of the pacer for progress output."""
        now = self._clock()
        return PacerState(
            concurrency=self._limit,
            in_flight=self._in_flight,
            throttled_for=max(0.0, self._throttled_until - now),
            throttled=self._throttled,
            retries=self._retries,
            budget_low=self._spacing > 0 and now < self._spacing_until,
        )

    # -- admission -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Wait for the throttle window, a free concurrency slot and the pace; hold the slot."""
        await self._admit()
        try:
            yield Slot(started=self._clock())
        finally:
            self._in_flight -= 1
            self._wake()

    async def _admit(self) -> None:
        while True:
            await self._wait_window()
            await self._take()
            if self._throttled_until <= self._clock():
                delay = self._reserve_start()
                if delay <= 0:
                    return
                try:
                    await self._sleep(delay)
                except BaseException:
                    self._in_flight -= 1
                    self._wake()
                    raise
                if self._throttled_until <= self._clock():
                    return
            # A 429 opened a window while this task queued for a slot, or waited for its turn
            # in the pace: give the slot back and wait for the window.
            self._in_flight -= 1
            self._wake()

    async def _wait_window(self) -> None:
        while (remaining := self._throttled_until - self._clock()) > 0:
            await self._sleep(remaining)

    async def _take(self) -> None:
        while self._in_flight >= self._limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                else:  # it was woken and cancelled at once: pass the wake-up on
                    self._wake()
                raise
        self._in_flight += 1

    def _wake(self) -> None:
        free = self._limit - self._in_flight
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def _reserve_start(self) -> float:
        """Seconds this request must wait so starts stay spread while the budget is low."""
        now = self._clock()
        if self._spacing <= 0 or now >= self._spacing_until:
            self._spacing = 0.0
            return 0.0
        # Never past the reset: the budget is whole again then, and a start reserved beyond
        # it (the spacing grows as the budget shrinks) would only leave that budget unused.
        start = min(max(now, self._next_start), self._spacing_until)
        self._next_start = start + self._spacing
        return start - now

    # -- feedback --------------------------------------------------------------------------

    def record(self, status: int, headers: Mapping[str, str], *, started: float | None) -> float:
        """Feed one response (or one response inside a $batch) back into the pacer.

        `headers` must be case-insensitive (httpx.Headers). `started` is `Slot.started` of
        the request, or None when unknown. Returns the throttle delay this response imposed on
        the tenant, in seconds (0 when it imposed none).
        """
        now = self._clock()
        retry_after = parse_retry_after(headers.get("Retry-After"), self._wall_clock())
        reset = _header_number(headers, "RateLimit-Reset")
        if status in THROTTLE_STATUSES:
            self._throttled += 1
            self._consecutive_throttles += 1
            delay = max(retry_after or 0.0, reset or 0.0)
            if delay <= 0:
                delay = self.retry_delay(self._consecutive_throttles - 1)
            self._open_window(now + delay)
            if started is None or started >= self._last_decrease:
                self._limit = max(self.min_concurrency, self._limit // 2)
                self._last_decrease = now
                self._clean = 0
            return delay
        self._consecutive_throttles = 0
        self._note_budget(now, headers, reset)
        if status < 500:
            self._clean += 1
            if self._clean >= self._limit and not self.state().budget_low:
                self._clean = 0
                if self._limit < self.max_concurrency:
                    self._limit += 1
                    self._wake()
        return 0.0

    def _note_budget(self, now: float, headers: Mapping[str, str], reset: float | None) -> None:
        limit = _header_number(headers, "RateLimit-Limit")
        remaining = _header_number(headers, "RateLimit-Remaining")
        if limit is None or remaining is None or reset is None:
            return
        if remaining <= 0:
            self._open_window(now + reset)
        elif remaining < self._low_budget_fraction * limit:
            requests_left = max(1.0, remaining / self._units_per_request)
            self._spacing = reset / requests_left
            self._spacing_until = now + reset
        else:
            self._spacing = 0.0

    def _open_window(self, until: float) -> None:
        self._throttled_until = max(self._throttled_until, until)

    # -- retries ---------------------------------------------------------------------------

    def retry_delay(self, attempt: int) -> float:
        """Jittered exponential backoff for retry number `attempt` (0-based), in seconds.

        The delay lies in [d/2, d] with d = min(max_delay, base_delay * 2**attempt).
        """
        ceiling = min(self._max_delay, self._base_delay * 2.0 ** min(attempt, 32))
        return ceiling * (0.5 + 0.5 * self._random())

    async def pause(self, seconds: float) -> None:
        """Wait between polls of a long-running operation (a OneDrive being provisioned), on
        the pacer's clock, so that polling too waits in one place."""
        await self._sleep(max(0.0, seconds))

    async def before_retry(self, attempt: int, *, throttled: bool) -> None:
        """Count a retry and wait before it.

        A throttled retry waits for nothing here: the window opened by `record()` holds it (and
        every other request of the tenant) in `slot()`. Any other retry backs off alone.
        """
        self._retries += 1
        if not throttled:
            await self._sleep(self.retry_delay(attempt))
