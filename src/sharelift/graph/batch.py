"""JSON batching: up to 20 Graph requests in one `POST /$batch`
(https://learn.microsoft.com/en-us/graph/json-batching).

`BatchRequest` and `BatchResponse` are one request and one answer inside a batch; `send_batch`
is what `GraphClient.batch` does: send, retry what was throttled or failed in a way worth
repeating (in a smaller batch), and hand back every answer in request order.

Throttling: Graph throttles each inner request on its own, so one batch may come back with
several 429s. They are one signal for the tenant's pacer (`Pacer.record_batch`): one throttle
window as long as the largest Retry-After among them, never one per answer (DESIGN.md
invariant 7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from sharelift.graph.errors import GraphError, error_from_body
from sharelift.graph.pacer import request_units
from sharelift.graph.retry import IDEMPOTENT_METHODS, Retry, should_retry
from sharelift.graph.transport import json_body

if TYPE_CHECKING:
    from sharelift.graph.client import GraphClient

MAX_BATCH = 20  # Graph's limit of requests per JSON batch


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request inside a JSON $batch.

    `url` is relative to the version root (`/drives/{id}/items/...`). `body` is JSON.
    `depends_on` names earlier requests of the same batch; Graph only accepts all-parallel,
    a serial chain, or all depending on the same one. `retry_safe` says that repeating the
    request after it may have been processed is harmless (None: decide by method).
    """

    id: str
    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    retry_safe: bool | None = None

    @property
    def idempotent(self) -> bool:
        if self.retry_safe is not None:
            return self.retry_safe
        return self.method.upper() in IDEMPOTENT_METHODS

    def to_json(self, depends_on: Sequence[str]) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url}
        headers = dict(self.headers)
        if self.body is not None:
            entry["body"] = self.body
            headers.setdefault("Content-Type", "application/json")
        if headers:
            entry["headers"] = headers
        if depends_on:
            entry["dependsOn"] = list(depends_on)
        return entry


@dataclass(frozen=True, slots=True)
class BatchResponse:
    """One response inside a $batch answer. `body` is parsed JSON (or a string, or None)."""

    id: str
    status: int
    headers: httpx.Headers
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self, request: BatchRequest) -> GraphError:
        """This response as a typed GraphError (meaningful when not `ok`)."""
        return error_from_body(
            self.status,
            self.body,
            method=request.method.upper(),
            url=request.url,
            request_id=self.headers.get("request-id", ""),
            client_request_id=self.headers.get("client-request-id", ""),
            reason="failed dependency" if self.status == 424 else "",
        )


async def send_batch(
    client: GraphClient, requests: Sequence[BatchRequest], *, max_attempts: int
) -> list[BatchResponse]:
    """Send up to 20 requests in one JSON $batch; return their responses in request order.

    Requests answered 429/503 inside the batch, and 5xx for those that are `idempotent`, are
    sent again in a smaller batch after the pacer's wait; so are 424s whose failed dependency
    is being retried. A dependency that already succeeded is dropped from `dependsOn` in the
    retry. Other failures are returned, not raised.
    """
    check_batch(requests)
    pending = list(requests)
    results: dict[str, BatchResponse] = {}
    attempt = 0
    while pending:
        ids = {r.id for r in pending}
        payload = {"requests": [r.to_json([d for d in r.depends_on if d in ids]) for r in pending]}
        response, slot = await client.exchange(
            "POST",
            "$batch",
            json=payload,
            retry_safe=all(r.idempotent for r in pending),
            units=sum(request_units(r.method, *_path_and_query(r.url)) for r in pending),
        )
        answers = batch_answers(json_body(response))
        retry: set[str] = set()
        throttled = False
        for req in pending:
            answer = answers.get(req.id)
            if answer is None:
                raise GraphError(f"Graph's $batch answer has no response for id {req.id!r}")
            decision = should_retry(
                answer.status,
                None,
                idempotent=req.idempotent,
                retry_after="Retry-After" in answer.headers,
            )
            if decision is not Retry.NO:
                retry.add(req.id)
                throttled = throttled or decision is Retry.THROTTLED
            elif answer.status == 424 and any(d in retry for d in req.depends_on):
                retry.add(req.id)  # requests come after their dependencies
            results[req.id] = answer
        # One signal for the tenant, whatever the number of throttled answers.
        client.pacer.record_batch(
            [(results[r.id].status, results[r.id].headers) for r in pending],
            started=slot.started,
            mark=slot.mark,
        )
        pending = [r for r in pending if r.id in retry]
        if not pending or attempt + 1 >= max_attempts:
            break
        await client.pacer.before_retry(attempt, throttled=throttled)
        attempt += 1
    return [results[r.id] for r in requests]


def _path_and_query(relative_url: str) -> tuple[str, str]:
    path, _, query = relative_url.partition("?")
    return path, query


def check_batch(requests: Sequence[BatchRequest]) -> None:
    """Raise ValueError unless `requests` make a batch Graph accepts."""
    if not 1 <= len(requests) <= MAX_BATCH:
        raise ValueError(f"a $batch carries 1 to {MAX_BATCH} requests, not {len(requests)}")
    seen: set[str] = set()
    for req in requests:
        if req.id in seen:
            raise ValueError(f"duplicate $batch request id {req.id!r}")
        if not req.url.startswith("/"):
            raise ValueError(f"a $batch url is relative to the version root: {req.url!r}")
        missing = [d for d in req.depends_on if d not in seen]
        if missing:
            raise ValueError(f"$batch request {req.id!r} depends on later or unknown {missing}")
        seen.add(req.id)


def batch_answers(body: Any) -> dict[str, BatchResponse]:
    """The answers of a $batch response, by request id. Raises GraphError when malformed."""
    responses = body.get("responses") if isinstance(body, Mapping) else None
    if not isinstance(responses, list):
        raise GraphError("Graph's $batch answer has no responses")
    answers: dict[str, BatchResponse] = {}
    for entry in responses:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("status"), int):
            raise GraphError("Graph's $batch answer has a response without status")
        raw_headers = entry.get("headers")
        headers = httpx.Headers(
            {str(k): str(v) for k, v in raw_headers.items()}
            if isinstance(raw_headers, Mapping)
            else {}
        )
        answers[str(entry.get("id"))] = BatchResponse(
            id=str(entry.get("id")), status=entry["status"], headers=headers, body=entry.get("body")
        )
    return answers
