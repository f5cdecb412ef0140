"""Faults on demand: latency, bandwidth cap, resource-unit throttling, 5xx, dropped connections.

Every knob lives in `settings.faults` and is read at request time, so the admin endpoint
(PUT /_emulator/faults) changes behaviour immediately.

Throttling follows "Avoid getting throttled or blocked in SharePoint Online"
(https://learn.microsoft.com/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online):
each request costs resource units (1 for a single-item GET, a delta call with a token or a
download; 2 for listing children, delta without a token, create/update/delete/upload; 5 for
permission operations); an app has a budget per minute; past it the answer is 429 with
Retry-After, and throttled requests still count. From 80% of the budget on, app-only answers carry
RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset (the same page, "Application Throttling").
$batch inner requests are charged one by one (https://learn.microsoft.com/graph/throttling).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharelift.emulator.identity import (
    BATCH_EXTENSION,
    Identity,
    bearer_token,
    send_graph_error,
)
from sharelift.emulator.observe import RECORD_KEY, RequestRecord
from sharelift.emulator.settings import EmulatorSettings

UPLOAD_PREFIXES = ("/_upload/", "/upload/", "/uploads/")
"""Path prefixes of upload-session URLs (unauthenticated; fragment PUTs count as uploads)."""
DOWNLOAD_PREFIXES = ("/_download/", "/download/", "/downloads/")
"""Path prefixes of pre-authenticated download URLs."""

_PERMISSION_SEGMENTS = ("permissions", "invite", "createLink", "grant", "revokeGrants")


class DroppedConnection(Exception):
    """Raised to make the server abort a connection (or an HTTP/2 stream) without a full answer."""


DROP_KEY = "sharelift.drop"
"""Scope key of the coroutine function aborting the current request (see ConnectionDropper)."""


class ConnectionDropper:
    """Pure ASGI, wrapped around the whole app by the server: makes dropped connections real.

    ASGI has no "abort", and an exception before the response starts becomes a 500. So this
    layer, which sees Hypercorn's own `send`, offers `scope[DROP_KEY]`: on HTTP/1.1 it starts a
    response whose body never comes and then fails the request, so Hypercorn closes the
    connection (the client sees "peer closed connection"); on HTTP/2 it resets the stream
    (RST_STREAM), which is what a client sees when a front end gives up on a request.
    Reaching the HTTP/2 connection relies on Hypercorn passing its stream's bound `app_send`.

    It also reads whatever is left of the request body before the response ends: Hypercorn
    0.18's HTTP/2 protocol fails the whole connection (KeyError on the stream id) when DATA
    frames arrive for a stream whose response has already completed, which happens whenever a
    handler answers (401, 404, 413...) without reading the body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dropped = False

        async def drop() -> None:
            nonlocal dropped
            dropped = True
            if scope.get("http_version") == "2" and await _reset_h2_stream(send):
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"1")],
                }
            )
            await send({"type": "http.response.body", "body": b"", "more_body": True})

        body_done = False
        receiving = 0
        received = asyncio.Event()

        async def tracking_receive() -> Message:
            nonlocal body_done, receiving
            receiving += 1
            try:
                message = await receive()
            finally:
                receiving -= 1
                received.set()
            if message["type"] != "http.request" or not message.get("more_body"):
                body_done = True
            return message

        async def draining_send(message: Message) -> None:
            if (
                not body_done
                and message["type"] == "http.response.body"
                and not message.get("more_body")
            ):
                while not body_done:
                    if receiving:  # the app is already waiting (a disconnect listener)
                        received.clear()
                        await received.wait()
                    else:
                        await tracking_receive()
            await send(message)

        await self.app({**scope, DROP_KEY: drop}, tracking_receive, draining_send)
        if dropped:
            raise DroppedConnection


async def _reset_h2_stream(send: Send) -> bool:
    stream = getattr(send, "__self__", None)
    protocol: Any = getattr(getattr(stream, "send", None), "__self__", None)
    connection = getattr(protocol, "connection", None)
    stream_id = getattr(stream, "stream_id", None)
    if connection is None or stream_id is None or not hasattr(protocol, "_flush"):
        return False
    import h2.errors

    connection.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.INTERNAL_ERROR)
    await protocol._flush()
    return True


@dataclass(frozen=True)
class Classified:
    """What a request is, for the log and for throttling."""

    kind: str
    ru: int
    graph: bool
    """Subject to throttling and injected errors (Graph API, upload and download URLs)."""


def classify(method: str, path: str, query: bytes) -> Classified:
    """Kind and resource-unit cost of a request, by method and path."""
    if path.startswith("/_emulator/"):
        return Classified("admin", 0, False)
    if "/_api/site/" in path:
        # The Migration API's SP.Site calls, on any site; their throttling is their own fault.
        return Classified("migration", 0, False)
    if path.startswith("/_api/"):
        return Classified("sharepoint", 0, False)
    if path.startswith(UPLOAD_PREFIXES):
        if method == "PUT":
            return Classified("upload", 2, True)
        return Classified("upload-session", 2 if method == "DELETE" else 1, True)
    if path.startswith(DOWNLOAD_PREFIXES):
        return Classified("download", 1, True)
    if not path.startswith("/v1.0/"):
        return Classified("identity", 0, False)
    if path == "/v1.0/$batch":
        return Classified("batch", 0, True)
    segments = path.rstrip("/").split("/")
    last = segments[-1]
    if any(s.startswith(_PERMISSION_SEGMENTS) for s in segments[3:]):
        return Classified("permission", 5, True)
    if method in ("GET", "HEAD"):
        if last.startswith("delta") or last.endswith("delta()"):
            with_token = b"token=" in query or b"deltatoken=" in query
            return Classified("delta", 1 if with_token else 2, True)
        if last in ("content", "$value") or last.endswith(":content"):
            return Classified("download", 1, True)
        if last in ("children", "drives", "items", "users", "sites", "versions"):
            return Classified("list", 2, True)
        return Classified("get", 1, True)
    if method == "PUT" and (last == "content" or last.endswith(":content")):
        return Classified("upload", 2, True)
    return Classified("write", 2, True)


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


class FaultsMiddleware:
    """Pure ASGI: applies `settings.faults` to each request."""

    def __init__(
        self, app: ASGIApp, settings: EmulatorSettings, identity: Identity, throttle: Throttle
    ) -> None:
        self.app = app
        self.settings = settings
        self.identity = identity
        self.throttle = throttle
        self.bandwidth = Bandwidth()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        faults = self.settings.faults
        c = classify(scope["method"], scope["path"], scope.get("query_string", b""))
        rec: RequestRecord | None = scope.get(RECORD_KEY)
        inner = BATCH_EXTENSION in (scope.get("extensions") or {})
        if rec is not None:
            rec.kind, rec.ru = c.kind, c.ru
        if c.kind == "admin":
            await self.app(scope, receive, send)
            return
        if faults.latency_ms > 0 and not inner:
            await asyncio.sleep(faults.latency_ms / 1000)

        extra: list[tuple[bytes, bytes]] = []
        if c.graph:
            if not inner and faults.chance(faults.drop_rate):
                if rec is not None:
                    rec.fault = "dropped"
                drop = scope.get(DROP_KEY)
                if drop is None:  # not behind the server's ConnectionDropper
                    raise DroppedConnection
                await self._drain(receive)
                await drop()
                return
            limit = faults.ru_per_minute
            if limit > 0 and c.ru > 0:
                app_id = _app_id_of(scope, self.identity.registration.client_id)
                ok, used, reset = self.throttle.charge(
                    app_id, c.ru, limit, faults.ru_window_s, time.monotonic()
                )
                if used >= faults.ratelimit_from * limit:
                    extra = [
                        (b"ratelimit-limit", str(limit).encode()),
                        (b"ratelimit-remaining", str(max(0, limit - used)).encode()),
                        (b"ratelimit-reset", str(max(1, math.ceil(reset))).encode()),
                    ]
                if not ok:
                    if rec is not None:
                        rec.fault = "throttled"
                    await self._drain(receive)
                    retry = (b"retry-after", str(max(1, math.ceil(reset))).encode())
                    await send_graph_error(
                        scope,
                        send,
                        429,
                        "activityLimitReached",
                        "The request has been throttled",
                        [retry, *extra],
                        inner_code="throttledRequest",
                    )
                    return
            if faults.chance(faults.error_rate):
                if rec is not None:
                    rec.fault = "injected"
                await self._drain(receive)
                if faults.chance(0.5):
                    await send_graph_error(
                        scope, send, 500, "generalException", "An internal error occurred."
                    )
                else:
                    await send_graph_error(
                        scope,
                        send,
                        503,
                        "serviceNotAvailable",
                        "The service is temporarily unavailable. Please retry later.",
                        [(b"retry-after", b"1")],
                    )
                return

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

    @staticmethod
    async def _drain(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                return
