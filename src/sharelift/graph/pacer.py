"""One pacer per tenant: it decides every wait before and between Graph requests.

SharePoint Online throttles per app per tenant, counts throttled requests against the budget,
and blocks apps that ignore Retry-After. So all requests to one tenant share one `Pacer`:

- A 429, or a 503 with a Retry-After, opens a *throttle window* for the whole tenant: no
  request of that tenant starts until it closes, not only the request that was refused. Its
  length is `Retry-After` (seconds or an HTTP-date), or `RateLimit-Reset` when that is larger,
  or a short jittered delay when a 429 named none. A `$batch` whose answers include several
  429s is one signal (`record_batch`): one window, as long as the largest delay they name.
  The window never grows with the count of throttled answers: the service says how long to
  wait, and the pacer waits exactly that.
- A 503 without Retry-After, and every other server error, is no throttling signal: the one
  request backs off alone (exponentially, with jitter; briefly for an upload or download URL),
  and the tenant keeps going.
- The pacer counts in resource units (RU), the currency SharePoint charges: every request
  says what it costs (`request_units`: 1 for a single-item GET, 2 for a write or a listing; a
  `$batch` the sum of what it carries, since Graph charges each inner request as if it came
  alone).
- `RateLimit-Limit/-Remaining/-Reset` (sent once an app has used 80% of its one-minute budget)
  slow requests down before a 429. The remaining budget a response reports is lowered by the
  units of every request started after that one (the service may not have charged them yet);
  while what is left is under `low_budget_fraction` of the limit, the budget is paid out
  evenly until the reset (reset / units left seconds per unit) and a request starts once its
  units have accrued, a 40-unit `$batch` waiting twenty times as long as a 2-unit PUT (one
  that would not fit before the reset starts at the reset); when nothing is left the tenant
  waits for the reset.
- Concurrency adapts, AIMD as in TCP: halve on a 429/503 (once per throttling episode: responses
  to requests started before the last decrease do not halve again), grow by one after a full
  window of clean responses, always within [min_concurrency, max_concurrency].
- Dropped connections back off exponentially with jitter, for the one request.
- On a cluster, several processes spend one tenant's budget: each spends its `share` of it
  (`set_share`: 1/N of the live workers) while the budget is low, and a throttle window that
  another process met is opened here too (`hold`).

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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

THROTTLE_STATUSES = frozenset({429, 503})


@dataclass(frozen=True, slots=True)
class PacerState:
    """A snapshot for progress displays.

    `throttled_for` is how many seconds the current throttle window has left (0 when none is
    open); `throttled` counts 429/503 responses seen and `retries` the retries taken;
    `throttle_wait` is how many seconds throttle windows have held the tenant's requests in
    all (Retry-After, or an exhausted budget's reset), the open window's whole length included.
    """

    concurrency: int
    in_flight: int
    throttled_for: float
    throttled: int
    retries: int
    budget_low: bool
    throttle_wait: float = 0.0


@dataclass(frozen=True, slots=True)
class Slot:
    """One admitted request.

    `started` (pacer clock) tells the AIMD which throttling episode it belongs to; `mark` is
    the pacer's running total of resource units started, this request's included, which tells
    how many units left after it (and may not be in the budget its response reports).
    """

    started: float
    mark: float = 0.0


# Resource units per request (REFERENCE, "Throttling"; the SharePoint page on throttling):
# 1 for a single-item GET, a delta call with a token, a download; 2 for a listing, a delta
# without a token, and every write (create, update, delete, upload).
_LISTINGS = frozenset({"children", "drives", "items", "users", "sites", "versions"})


def request_units(method: str, path: str, query: str = "") -> float:
    """The resource units SharePoint charges for one request, estimated from its shape.

    `path` is the URL path (an upload URL's too); `query` its query string. A `$batch` is
    not priced here: its cost is the sum of its inner requests'.
    """
    method = method.upper()
    if method not in ("GET", "HEAD"):
        return 2.0
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if last.startswith("delta") or last.endswith("delta()"):
        return 1.0 if "token=" in query else 2.0
    return 2.0 if last in _LISTINGS else 1.0


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
        short_max_delay: float = 4.0,
        low_budget_fraction: float = 0.25,
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
        self._short_max_delay = short_max_delay
        self._low_budget_fraction = low_budget_fraction
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._random = random

        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._throttled_until = 0.0
        self._last_decrease = -math.inf
        self._clean = 0
        self._spacing = 0.0  # seconds per resource unit while the budget is low
        self._spacing_until = 0.0
        self._next_start = 0.0
        self._units_started = 0.0
        self._throttled = 0
        self._throttle_wait = 0.0
        self._retries = 0
        self._share = 1.0

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
            throttle_wait=self._throttle_wait,
        )

    # -- a tenant shared with other processes --------------------------------------------

    def set_share(self, share: float) -> None:
        """Spend `share` (0 < share <= 1) of what the tenant's budget has left: while it is
        low, starts are spread 1/share times further apart than for a process alone."""
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self._share = share

    def hold(self, seconds: float) -> None:
        """Open a throttle window of `seconds` from now for every request of the tenant: the
        service throttled another process that spends the same budget."""
        if seconds > 0:
            self._open_window(self._clock() + seconds)

    # -- admission -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(self, units: float = 2.0) -> AsyncIterator[Slot]:
        """Wait for the throttle window, a free concurrency slot and the pace; hold the slot.

        `units` is what the request costs in resource units (`request_units`; a `$batch` the
        sum of its inner requests').
        """
        await self._admit(units)
        self._units_started += units
        try:
            yield Slot(started=self._clock(), mark=self._units_started)
        finally:
            self._in_flight -= 1
            self._wake()

    async def _admit(self, units: float) -> None:
        while True:
            await self._wait_window()
            await self._take()
            if self._throttled_until <= self._clock():
                delay = self._reserve_start(units)
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

    def _reserve_start(self, units: float) -> float:
        """Seconds a request of `units` must wait so starts stay spread while the budget is
        low: each start takes its units' share of the time left until the reset."""
        now = self._clock()
        if self._spacing <= 0 or now >= self._spacing_until:
            self._spacing = 0.0
            return 0.0
        # A request starts once the budget has accrued its units (so a 40-unit $batch never
        # goes when 30 are left), and never past the reset: the budget is whole again then,
        # and a start reserved beyond it would only leave that budget unused.
        start = min(max(now, self._next_start) + self._spacing * units, self._spacing_until)
        self._next_start = start
        return start - now

    # -- feedback --------------------------------------------------------------------------

    def record(
        self,
        status: int,
        headers: Mapping[str, str],
        *,
        started: float | None,
        mark: float | None = None,
    ) -> float:
        """Feed one response back into the pacer.

        `headers` must be case-insensitive (httpx.Headers). `started` and `mark` are the
        request's `Slot.started` and `Slot.mark`, or None when unknown. Returns the throttle
        delay this response imposed on the tenant, in seconds (0 when it imposed none).
        """
        now = self._clock()
        delay = self._throttle_delay(status, headers)
        if delay is not None:
            self._throttle(now, delay, started)
            return delay
        self._note_budget(now, headers, _header_number(headers, "RateLimit-Reset"), mark)
        if status < 500:
            self._clean += 1
            if self._clean >= self._limit and not self.state().budget_low:
                self._clean = 0
                if self._limit < self.max_concurrency:
                    self._limit += 1
                    self._wake()
        return 0.0

    def record_batch(
        self,
        answers: Sequence[tuple[int, Mapping[str, str]]],
        *,
        started: float | None,
        mark: float | None = None,
    ) -> float:
        """Feed the answers inside one `$batch` back into the pacer, as one signal.

        Graph throttles each request of a batch on its own, so a batch may carry several 429s:
        they open one window, as long as the largest delay any of them names, and halve the
        concurrency at most once. The lowest budget any answer reports is noted. The batch's
        own response goes through `record` like any other. Returns the throttle delay.
        """
        now = self._clock()
        delays = [self._throttle_delay(status, headers) for status, headers in answers]
        named = [d for d in delays if d is not None]
        if named:
            delay = max(named)
            self._throttle(now, delay, started)
            return delay
        for _status, headers in answers:
            self._note_budget(now, headers, _header_number(headers, "RateLimit-Reset"), mark)
        return 0.0

    def _throttle_delay(self, status: int, headers: Mapping[str, str]) -> float | None:
        """How long a throttling answer asks the tenant to wait; None when it is none (a 503
        without Retry-After is a server error, not throttling)."""
        retry_after = parse_retry_after(headers.get("Retry-After"), self._wall_clock())
        if status not in THROTTLE_STATUSES or (status == 503 and retry_after is None):
            return None
        reset = _header_number(headers, "RateLimit-Reset")
        delay = max(retry_after or 0.0, reset or 0.0)
        # A 429 that names no delay: a short jittered pause, never one that grows with the
        # count of throttled answers (issue: a batch of 429s once held a tenant for 44 s).
        return delay if delay > 0 else self.retry_delay(0)

    def _throttle(self, now: float, delay: float, started: float | None) -> None:
        self._throttled += 1
        self._open_window(now + delay)
        if started is None or started >= self._last_decrease:
            self._limit = max(self.min_concurrency, self._limit // 2)
            self._last_decrease = now
            self._clean = 0

    def _note_budget(
        self, now: float, headers: Mapping[str, str], reset: float | None, mark: float | None
    ) -> None:
        limit = _header_number(headers, "RateLimit-Limit")
        remaining = _header_number(headers, "RateLimit-Remaining")
        if limit is None or remaining is None or reset is None:
            return
        # Requests started after this one may reach the service after it answered: count
        # their units as spent already.
        unseen = 0.0 if mark is None else max(0.0, self._units_started - mark)
        left = remaining - unseen
        if left <= 0:
            self._open_window(now + reset)
        elif left < self._low_budget_fraction * limit:
            self._spacing = reset / (left * self._share)
            self._spacing_until = now + reset
            # Starts already reserved were priced at the old rate; the new one applies from
            # now (the reservations are never pushed back, only the next ones).
        else:
            self._spacing = 0.0

    def _open_window(self, until: float) -> None:
        # Only the time a window adds counts: windows opened while one is open overlap.
        self._throttle_wait += max(0.0, until - max(self._throttled_until, self._clock()))
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

    async def before_retry(self, attempt: int, *, throttled: bool, short: bool = False) -> None:
        """Count a retry and wait before it.

        A throttled retry waits for nothing here: the window opened by `record()` holds it (and
        every other request of the tenant) in `slot()`. Any other retry backs off alone;
        `short` caps its delay at `short_max_delay` (an upload or download URL's server error:
        the service answers there again within seconds, and the file's transfer waits).
        """
        self._retries += 1
        if not throttled:
            delay = self.retry_delay(attempt)
            if short:
                delay = min(delay, self._short_max_delay * (0.5 + 0.5 * self._random()))
            await self._sleep(delay)
