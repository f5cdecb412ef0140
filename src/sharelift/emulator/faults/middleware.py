"""`FaultsMiddleware`: applies the fault rules to each request, and paces body bytes.

Every knob lives in `settings.faults` and is read at request time, so the admin endpoint
(PUT /_emulator/faults) changes behaviour immediately.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharelift.emulator.asgi import BATCH_EXTENSION
from sharelift.emulator.faults.classify import classify
from sharelift.emulator.faults.rules import Arrival, Rule
from sharelift.emulator.observe import RECORD_KEY, RequestRecord
from sharelift.emulator.settings import EmulatorSettings


class Bandwidth:
    """One tenant-wide pacer for body bytes (request and response), a virtual-clock token bucket."""

    _BURST_S = 0.05

    def __init__(self) -> None:
        self._clock = 0.0

    async def take(self, nbytes: int, rate: int) -> None:
        if rate <= 0 or nbytes <= 0:
            return
        now = time.monotonic()
        self._clock = max(self._clock, now - self._BURST_S) + nbytes / rate
        delay = self._clock - now - self._BURST_S
        if delay > 0:
            await asyncio.sleep(delay)


class FaultsMiddleware:
    """Pure ASGI: runs `rules` (see `rules.standard_rules`) on each request, then paces its
    body bytes to `faults.bandwidth_bps` and adds the headers the rules asked for."""

    def __init__(self, app: ASGIApp, settings: EmulatorSettings, rules: Sequence[Rule]) -> None:
        self.app = app
        self.settings = settings
        self.rules = list(rules)
        self.bandwidth = Bandwidth()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        faults = self.settings.faults
        what = classify(scope["method"], scope["path"], scope.get("query_string", b""))
        rec: RequestRecord | None = scope.get(RECORD_KEY)
        inner = BATCH_EXTENSION in (scope.get("extensions") or {})
        if rec is not None:
            rec.kind, rec.ru = what.kind, what.ru
        if what.kind == "admin":
            await self.app(scope, receive, send)
            return
        arrival = Arrival(scope, receive, send, what, inner, rec)
        for rule in self.rules:
            if await rule(arrival, faults):
                return

        extra = arrival.extra_headers
        # An inner $batch request's bytes are part of the outer request's, already paced.
        paced = not inner and faults.bandwidth_bps > 0
        if not extra and not paced:
            await self.app(scope, receive, send)
            return

        async def paced_receive() -> Message:
            message = await receive()
            if paced and message["type"] == "http.request":
                await self.bandwidth.take(
                    len(message.get("body", b"")), self.settings.faults.bandwidth_bps
                )
            return message

        async def decorated_send(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif paced and message["type"] == "http.response.body":
                await self.bandwidth.take(
                    len(message.get("body", b"")), self.settings.faults.bandwidth_bps
                )
            await send(message)

        await self.app(scope, paced_receive, decorated_send)
