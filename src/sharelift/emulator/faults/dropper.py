"""Dropped connections made real: what a client sees when a front end gives up on a request."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
