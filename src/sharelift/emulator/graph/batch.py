"""JSON batching: `POST /v1.0/$batch` (https://learn.microsoft.com/graph/json-batching).

Each inner request re-enters the whole ASGI app (every middleware included) with a synthetic
HTTP scope whose `extensions["sharelift.batch"]` carries the outer request's principal: the
platform's auth middleware accepts that principal instead of a token, and its fault middleware
throttles each inner request on its own (a throttled one answers 429 inside the batch).

Independent requests run concurrently; a request with `dependsOn` starts after its
dependencies finish, and answers 424 Failed Dependency when one of them failed (status >= 400).
Responses come back in request order. Bodies: JSON stays JSON; any other body is base64, both
ways (a request body given as a string with a non-JSON Content-Type is base64-decoded).
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from sharelift.emulator.asgi import BATCH_EXTENSION
from sharelift.emulator.graph.wire import error_response, json_response

MAX_REQUESTS = 20
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}


class BatchError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _validate(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("requests"), list):
        raise BatchError("Invalid batch payload format: a 'requests' array is required.")
    requests: list[dict[str, Any]] = payload["requests"]
    if not requests:
        raise BatchError("Invalid batch payload format: the 'requests' array is empty.")
    if len(requests) > MAX_REQUESTS:
        raise BatchError(f"The number of batch requests exceeds the maximum of {MAX_REQUESTS}.")
    ids: set[str] = set()
    for req in requests:
        if not isinstance(req, dict):
            raise BatchError("Invalid batch payload format: each request must be an object.")
        rid, method, url = req.get("id"), req.get("method"), req.get("url")
        if not isinstance(rid, str | int) or str(rid) == "":
            raise BatchError("Each batch request needs an 'id'.")
        if str(rid) in ids:
            raise BatchError(f"Batch request ids must be unique; '{rid}' is repeated.")
        ids.add(str(rid))
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise BatchError(f"Batch request '{rid}' has an invalid method.")
        if not isinstance(url, str) or not url:
            raise BatchError(f"Batch request '{rid}' has no url.")
        if _inner_target(url)[0].rstrip("/") == "/v1.0/$batch":
            raise BatchError(f"Batch request '{rid}': a $batch cannot contain a $batch.")
        headers = req.get("headers", {})
        if not isinstance(headers, dict):
            raise BatchError(f"Batch request '{rid}' has invalid headers.")
    for req in requests:
        depends = req.get("dependsOn", [])
        if not isinstance(depends, list) or any(str(d) not in ids for d in depends):
            raise BatchError(f"Batch request '{req['id']}' depends on an unknown id.")
        if str(req["id"]) in {str(d) for d in depends}:
            raise BatchError(f"Batch request '{req['id']}' depends on itself.")
    return requests


def _inner_target(url: str) -> tuple[str, str]:
    """The inner url ("/me/drive?$top=1", "me/drive", or absolute) -> (raw path, query)."""
    parts = urlsplit(url)
    path = parts.path if parts.scheme else url.split("?", 1)[0]
    query = parts.query if parts.scheme else (url.split("?", 1)[1] if "?" in url else "")
    if not path.startswith("/"):
        path = "/" + path
    if not path.startswith("/v1.0/"):
        path = "/v1.0" + path
    return path, query


def _request_body(req: dict[str, Any], headers: dict[str, str]) -> bytes:
    if "body" not in req or req["body"] is None:
        return b""
    body = req["body"]
    content_type = headers.get("content-type", "")
    if isinstance(body, str) and content_type and "json" not in content_type.lower():
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:
            raise BatchError(
                f"Batch request '{req['id']}': a non-JSON body must be base64-encoded."
            ) from None
    if "content-type" not in headers:
        headers["content-type"] = "application/json"
    return json.dumps(body).encode()


async def _run_one(request: Request, req: dict[str, Any]) -> dict[str, Any]:
    headers = {str(k).lower(): str(v) for k, v in req.get("headers", {}).items()}
    headers.pop("authorization", None)
    body = _request_body(req, headers)
    path, query = _inner_target(str(req["url"]))
    headers["content-length"] = str(len(body))
    if "host" in request.headers:
        headers["host"] = request.headers["host"]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": str(req["method"]).upper(),
        "scheme": request.url.scheme,
        "server": request.scope.get("server"),
        "client": request.scope.get("client"),
        "root_path": "",
        "path": unquote(path),
        "raw_path": quote(unquote(path), safe="/:$,;=@!'()*+").encode(),
        "query_string": query.encode(),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "extensions": {BATCH_EXTENSION: {"principal": request.state.principal}},
        "state": {},
    }
    finished = asyncio.Event()
    sent_body = False

    async def receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    status = 500
    out_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for k, v in message.get("headers", []):
                name = k.decode("latin-1").lower()
                if name not in ("content-length", "transfer-encoding", "connection"):
                    out_headers[name] = v.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await request.app(scope, receive, send)
    finally:
        finished.set()
    raw = b"".join(chunks)
    result: dict[str, Any] = {"id": str(req["id"]), "status": status, "headers": out_headers}
    if raw:
        if "json" in out_headers.get("content-type", ""):
            result["body"] = json.loads(raw)
        else:
            result["body"] = base64.b64encode(raw).decode("ascii")
    return result


def _failed_dependency(req: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(req["id"]),
        "status": 424,
        "headers": {"content-type": "application/json"},
        "body": {
            "error": {
                "code": "FailedDependency",
                "message": "The request was not run because a request it depends on failed.",
            }
        },
    }


async def batch_endpoint(request: Request) -> Response:
    try:
        try:
            payload = json.loads(await request.body())
        except ValueError:
            raise BatchError("Invalid batch payload format: the body is not JSON.") from None
        requests = _validate(payload)
    except BatchError as exc:
        return error_response(request, 400, "BadRequest", exc.message)

    tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}

    async def run(req: dict[str, Any]) -> dict[str, Any]:
        for dep in req.get("dependsOn", []):
            dep_result = await tasks[str(dep)]
            if dep_result["status"] >= 400:
                return _failed_dependency(req)
        return await _run_one(request, req)

    # Create every task before any runs, so each can await the ones it depends on; a cycle
    # in dependsOn would deadlock, so it is refused first.
    if _has_cycle(requests):
        return error_response(request, 400, "BadRequest", "dependsOn forms a cycle.")
    for req in requests:
        tasks[str(req["id"])] = asyncio.ensure_future(run(req))
    responses = [await tasks[str(req["id"])] for req in requests]
    return json_response(request, {"responses": responses})


def _has_cycle(requests: list[dict[str, Any]]) -> bool:
    graph = {str(r["id"]): [str(d) for d in r.get("dependsOn", [])] for r in requests}
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        if state.get(node) == 1:
            return True
        if state.get(node) == 2:
            return False
        state[node] = 1
        if any(visit(dep) for dep in graph[node]):
            return True
        state[node] = 2
        return False

    return any(visit(node) for node in graph)
