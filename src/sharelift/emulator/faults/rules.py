"""The faults a request can meet before it is handled, one rule each.

A rule is an async callable `rule(arrival, faults) -> bool`: it reads its knobs from `faults`
(the live `settings.faults`) and either lets the request go on (False), possibly adding response
headers to `arrival.extra_headers`, or answers or drops it itself (True). `FaultsMiddleware`
runs its rules in order; a new fault is a new rule added to `standard_rules`.

Throttling follows "Avoid getting throttled or blocked in SharePoint Online"
(https://learn.microsoft.com/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online):
an app has a budget of resource units per minute (see `classify` for the costs); past it the
answer is 429 with Retry-After, and throttled requests still count. From 80% of the budget on,
app-only answers carry RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset (the same page,
"Application Throttling"). $batch inner requests are charged one by one
(https://learn.microsoft.com/graph/throttling).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.types import Receive, Scope, Send

from sharelift.emulator.asgi import BATCH_EXTENSION, bearer_token, drain, send_graph_error
from sharelift.emulator.faults.classify import Classified
from sharelift.emulator.faults.dropper import DROP_KEY, DroppedConnection
from sharelift.emulator.faults.never_answer import never_answer
from sharelift.emulator.observe import RequestRecord
from sharelift.emulator.settings import Faults


@dataclass
class Arrival:
    """A request meeting the faults: its ASGI scope and channels, and what it is."""

    scope: Scope
    receive: Receive
    send: Send
    what: Classified
    inner: bool
    """An inner request of a $batch (its outer request already met latency and drops)."""
    record: RequestRecord | None
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Headers a rule adds to the response of a request it lets through."""

    def mark(self, fault: str) -> None:
        """Note in the request log which fault met this request."""
        if self.record is not None:
            self.record.fault = fault

    async def answer_error(
        self,
        status: int,
        code: str,
        message: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        inner_code: str | None = None,
    ) -> None:
        """Read and drop the body, then answer with a Graph error."""
        await drain(self.receive)
        await send_graph_error(self.scope, self.send, status, code, message, headers, inner_code)


Rule = Callable[[Arrival, Faults], Awaitable[bool]]
"""`rule(arrival, faults)`: True when the rule answered (or dropped) the request."""


async def add_latency(arrival: Arrival, faults: Faults) -> bool:
    """`latency_ms` before every request (inner $batch requests excepted)."""
    if faults.latency_ms > 0 and not arrival.inner:
        await asyncio.sleep(faults.latency_ms / 1000)
    return False


async def drop_connection(arrival: Arrival, faults: Faults) -> bool:
    """With probability `drop_rate`, drop the connection without an answer."""
    if not arrival.what.graph or arrival.inner or not faults.chance(faults.drop_rate):
        return False
    arrival.mark("dropped")
    drop = arrival.scope.get(DROP_KEY)
    if drop is None:  # not behind the server's ConnectionDropper
        raise DroppedConnection
    await drain(arrival.receive)
    await drop()
    return True


@dataclass
class _Window:
    start: float
    used: int = 0


class Throttle:
    """Resource units per app per window; a fixed window restarting when it has elapsed."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    def reset(self) -> None:
        self._windows.clear()

    def charge(
        self, app_id: str, cost: int, limit: int, window_s: float, now: float
    ) -> tuple[bool, int, float]:
        """Charge `cost` to `app_id`; returns (allowed, units used, seconds until reset)."""
        win = self._windows.get(app_id)
        if win is None or now - win.start >= window_s:
            win = self._windows[app_id] = _Window(now)
        win.used += cost  # throttled requests still count
        return win.used <= limit, win.used, max(0.0, win.start + window_s - now)


def _app_id_of(scope: Scope, default: str) -> str:
    """The app a request is charged to: the token's appid (read, not verified: auth does that)."""
    batch = (scope.get("extensions") or {}).get(BATCH_EXTENSION)
    if batch is not None:
        return str(getattr(batch["principal"], "app_id", default))
    token = bearer_token(scope)
    if token is None:
        return default
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("appid") or claims.get("azp") or default)
    except (IndexError, ValueError):
        return default


class Throttling:
    """The resource-unit budget per app (`ru_per_minute` per `ru_window_s`), as a rule."""

    def __init__(self, windows: Throttle, default_app_id: str) -> None:
        self.windows = windows
        self.default_app_id = default_app_id

    async def __call__(self, arrival: Arrival, faults: Faults) -> bool:
        limit, cost = faults.ru_per_minute, arrival.what.ru
        if not arrival.what.graph or limit <= 0 or cost <= 0:
            return False
        app_id = _app_id_of(arrival.scope, self.default_app_id)
        ok, used, reset = self.windows.charge(
            app_id, cost, limit, faults.ru_window_s, time.monotonic()
        )
        if used >= faults.ratelimit_from * limit:
            arrival.extra_headers = [
                (b"ratelimit-limit", str(limit).encode()),
                (b"ratelimit-remaining", str(max(0, limit - used)).encode()),
                (b"ratelimit-reset", str(max(1, math.ceil(reset))).encode()),
            ]
        if ok:
            return False
        arrival.mark("throttled")
        retry = (b"retry-after", str(max(1, math.ceil(reset))).encode())
        await arrival.answer_error(
            429,
            "activityLimitReached",
            "The request has been throttled",
            [retry, *arrival.extra_headers],
            inner_code="throttledRequest",
        )
        return True


async def inject_server_error(arrival: Arrival, faults: Faults) -> bool:
    """With probability `error_rate`, answer 500, or 503 with Retry-After (one in two)."""
    if not arrival.what.graph or not faults.chance(faults.error_rate):
        return False
    arrival.mark("injected")
    if faults.chance(0.5):
        await arrival.answer_error(500, "generalException", "An internal error occurred.")
    else:
        await arrival.answer_error(
            503,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
            [(b"retry-after", b"1")],
        )
    return True


def standard_rules(throttle: Throttle, default_app_id: str) -> list[Rule]:
    """The emulator's faults, in the order they meet a request (the order of the random draws
    matters for replaying a seed): never answering (no draw), latency, dropped connection,
    throttling, server error."""
    return [
        never_answer,
        add_latency,
        drop_connection,
        Throttling(throttle, default_app_id),
        inject_server_error,
    ]
