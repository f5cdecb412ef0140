"""Small helpers for the emulator's pure-ASGI layers (faults, authentication, $batch).

They work on the raw ASGI scope, before any Starlette request exists: read a header or the
bearer token, hand a principal to the layers below, answer with a Graph error body.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from starlette.types import Message, Receive, Scope, Send

BATCH_EXTENSION = "sharelift.batch"
"""scope["extensions"] key under which $batch passes an inner request's principal."""


def header_value(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case) in an ASGI scope."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def bearer_token(scope: Scope) -> str | None:
    """The bearer token in the Authorization header, or None."""
    header = header_value(scope, b"authorization")
    if header is None or header[:7].lower() != "bearer ":
        return None
    token = header[7:].strip()
    return token or None


def with_principal(scope: Scope, principal: Any) -> Scope:
    """A copy of `scope` whose state carries `principal` (the server's state dict is shared)."""
    return {**scope, "state": {**(scope.get("state") or {}), "principal": principal}}


def graph_error_body(
    code: str,
    message: str,
    request_id: str,
    client_request_id: str,
    inner_code: str | None = None,
) -> bytes:
    """A Graph error body, `{"error": {"code", "message", "innerError": {...}}}`."""
    inner: dict[str, str] = {"code": inner_code} if inner_code else {}
    inner |= {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }
    return json.dumps({"error": {"code": code, "message": message, "innerError": inner}}).encode()


async def send_graph_error(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    message: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    inner_code: str | None = None,
) -> None:
    """Answer the request in `scope` with a Graph error."""
    request_id = str(uuid.uuid4())
    client_request_id = header_value(scope, b"client-request-id") or request_id
    body = graph_error_body(code, message, request_id, client_request_id, inner_code)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"request-id", request_id.encode()),
        (b"client-request-id", client_request_id.encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def drain(receive: Receive) -> None:
    """Read and drop the request body so the connection can be reused."""
    while True:
        message: Message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
