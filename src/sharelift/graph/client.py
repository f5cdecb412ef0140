"""The HTTP client for Microsoft Graph: transport, authentication, retries, errors, $batch.

`GraphClient` is the only object in sharelift that sends HTTP to Microsoft. It wraps an
`httpx.AsyncClient` (HTTP/2, TLS verification always on, proxies from the environment; upload
URLs over a second one speaking HTTP/1.1, which moves large bodies much faster) and
routes every exchange through the tenant's `Pacer`. One `should_retry` decides, for every
call, whether a failure is worth another attempt.

Secrets: the bearer token lives only in the Authorization header of the outgoing request; it is
never logged, stored on an error, or sent to any origin but the configured Graph base URL.
Upload URLs are pre-authenticated: they are called without Authorization, and their query
string (which carries the credential) is cut from every log line and error.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
import logging
import os
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import certifi
import httpx

from sharelift import __version__
from sharelift.errors import AuthError
from sharelift.graph.connect import connect_mounts
from sharelift.graph.errors import GraphError, TransportError, error_from_body
from sharelift.graph.pacer import THROTTLE_STATUSES, Pacer, Slot, request_units

log = logging.getLogger("sharelift.graph")

GRAPH_GLOBAL = "https://graph.microsoft.com/v1.0"

# Microsoft asks for "ISV|CompanyName|AppName/Version" so that decorated traffic is recognised
# and prioritised:
# https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online
USER_AGENT = f"ISV|sharelift|sharelift/{__version__}"

TokenSupplier = Callable[[], str | Awaitable[str]]
"""Returns a bearer token for Graph; sync or async. Called before every authenticated request
(so it should cache, as MSAL does), and once more after a 401 to replace an expired token."""

Body = bytes | memoryview

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})

# Fragment bodies given as a memoryview are streamed in pieces of this size, so no second copy
# of the fragment is made (TLS encrypts and the socket sends piece by piece).
_STREAM_CHUNK = 1 << 18

DEFAULT_TIMEOUT = httpx.Timeout(connect=30.0, read=300.0, write=300.0, pool=None)


class Retry(enum.Enum):
    """What to do after a failed exchange."""

    NO = "no"  # give up: raise the error
    THROTTLED = "throttled"  # wait for the tenant's throttle window, then retry
    BACKOFF = "backoff"  # wait a jittered exponential delay, then retry


def should_retry(status: int | None, error: BaseException | None, *, idempotent: bool) -> Retry:
    """The one retry decision for every Graph call (like rclone's shouldRetry).

    - 429, and 503 (SharePoint's "server too busy"): the request was not processed, so it is
      retried whatever its method, after the throttle window.
    - 500, 502, 504, 509: retried with backoff, but only when repeating the request is harmless
      (`idempotent`): the server may have acted before failing.
    - A connection that was never made (refused, connect timeout, no pooled connection): always
      retried. One that broke after the request went out (reset, read timeout, protocol error):
      only when `idempotent`. A TLS certificate failure is never retried.
    - Everything else (400, 401, 403, 404, 409, 412, 413, 416, 507, ...) cannot succeed by
      repeating it and is not retried.
    """
    if error is not None:
        if _is_certificate_error(error):
            return Retry.NO
        if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return Retry.BACKOFF
        if isinstance(error, httpx.ProxyError):
            return Retry.BACKOFF
        if isinstance(
            error, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
        ):
            return Retry.BACKOFF if idempotent else Retry.NO
        return Retry.NO
    if status in THROTTLE_STATUSES:
        return Retry.THROTTLED
    if status in (500, 502, 504, 509):
        return Retry.BACKOFF if idempotent else Retry.NO
    return Retry.NO


def _is_certificate_error(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(error)


def make_ssl_context(ca_file: str | os.PathLike[str] | None = None) -> ssl.SSLContext:
    """A verifying TLS context: the system trust store, certifi's bundle, and `ca_file`.

    The system store (OpenSSL's default paths, SSL_CERT_FILE / SSL_CERT_DIR) carries a company
    proxy's CA when IT installed one; certifi covers systems without a usable store; `ca_file`
    adds one more trust anchor, such as the emulator's CA.
    """
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=certifi.where())
    if ca_file is not None:
        context.load_verify_locations(cafile=os.fspath(ca_file))
    return context


def redact_url(url: httpx.URL | str, *, pre_authenticated: bool = False) -> str:
    """The URL without its query string (an upload URL's query is a credential); for a
    pre-authenticated URL (an upload session's), without its path either: a service may keep
    the credential there."""
    parsed = httpx.URL(str(url))
    if pre_authenticated:
        return str(parsed.copy_with(path="/", query=None, fragment=None)) + "… (upload URL)"
    text = str(parsed.copy_with(query=None, fragment=None))
    return text + ("?…" if parsed.query else "")


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


MAX_BATCH = 20  # Graph's limit of requests per JSON batch


class _ConnectionStack:
    """HTTP/1.1 clients of one connection each, lent to one request at a time; the most
    recently returned first, so a warm connection is reused and the rest may idle out."""

    def __init__(self, make: Callable[[], httpx.AsyncClient]) -> None:
        self._make = make
        self._idle: list[httpx.AsyncClient] = []
        self._all: list[httpx.AsyncClient] = []

    @contextlib.contextmanager
    def take(self) -> Iterator[httpx.AsyncClient]:
        if self._idle:
            client = self._idle.pop()
        else:
            client = self._make()
            self._all.append(client)
        try:
            yield client
        finally:
            self._idle.append(client)

    async def aclose(self, *, keep: httpx.AsyncClient) -> None:
        for client in self._all:
            if client is not keep:
                await client.aclose()
        self._all.clear()
        self._idle.clear()


class GraphClient:
    """An authenticated, paced, retrying client for one Graph endpoint (one tenant).

    `base_url` is the version root: Graph global `https://graph.microsoft.com/v1.0`, another
    cloud's, or the emulator's `https://127.0.0.1:PORT/v1.0`. `verify` is a CA file to trust
    in addition to the system store, or a ready SSLContext (which must verify). `connect` maps
    host names to the `host:port` to connect to instead (the emulator's emulator.json
    `connect`: its upload and download URLs name SharePoint hosts; see `graph.connect`).
    `transport` replaces the network, for tests. Use as `async with GraphClient(...) as client:`.
    """

    def __init__(
        self,
        *,
        token: TokenSupplier,
        base_url: str = GRAPH_GLOBAL,
        pacer: Pacer | None = None,
        verify: ssl.SSLContext | str | os.PathLike[str] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_attempts: int = 8,
        user_agent: str = USER_AGENT,
        transport: httpx.AsyncBaseTransport | None = None,
        connect: Mapping[str, str] | None = None,
    ) -> None:
        base = httpx.URL(base_url.rstrip("/"))
        if base.scheme != "https":
            raise ValueError("the Graph base URL must use https")
        self.base_url = base
        self.pacer = pacer if pacer is not None else Pacer()
        self._token = token
        self._max_attempts = max(1, max_attempts)
        if isinstance(verify, ssl.SSLContext):
            if verify.verify_mode != ssl.CERT_REQUIRED or not verify.check_hostname:
                raise ValueError("TLS verification cannot be turned off")
            context = verify
        else:
            context = make_ssl_context(verify)
        connections = self.pacer.max_concurrency + 4
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        mapped = {} if transport is not None else dict(connect or {})
        self._http = httpx.AsyncClient(
            http2=True,
            verify=context,
            trust_env=True,  # HTTPS_PROXY / NO_PROXY, for Graph and for upload URLs alike
            timeout=timeout,
            limits=limits,
            headers={"User-Agent": user_agent},
            follow_redirects=False,
            transport=transport,
            mounts=connect_mounts(mapped, verify=context, http2=True, limits=limits),
        )
        # Fragment PUTs to upload URLs go over HTTP/1.1, one connection each: a large body
        # over one multiplexed HTTP/2 connection is held to its flow-control window and
        # httpx/h2's per-frame work (measured: ~10 MiB/s over h2 against 100+ MiB/s over
        # HTTP/1.1 to the same server), while Graph calls keep HTTP/2 multiplexing.
        # Each connection is a client of its own, taken by one request at a time: httpcore
        # probes every idle connection of a pool on each request (a socket poll through
        # several layers), which was a sixth of the CPU of a small-file migration with a
        # shared pool of 20.
        self._uploads = _ConnectionStack(
            lambda: (
                httpx.AsyncClient(
                    http2=False,
                    verify=context,
                    trust_env=True,
                    timeout=timeout,
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    headers={"User-Agent": user_agent},
                    follow_redirects=False,
                    mounts=connect_mounts(
                        mapped,
                        verify=context,
                        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                    ),
                )
                if transport is None
                else self._http
            )  # tests: one seam for every request
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._uploads.aclose(keep=self._http)
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"GraphClient(base_url={str(self.base_url)!r})"

    def url(self, path_or_url: str) -> httpx.URL:
        """An absolute URL: as given when absolute (nextLink, uploadUrl), else under base_url."""
        if path_or_url.startswith(("https://", "http://")):
            return httpx.URL(path_or_url)
        return httpx.URL(str(self.base_url) + "/" + path_or_url.lstrip("/"))

    def _same_origin(self, url: httpx.URL) -> bool:
        base = self.base_url
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)

    async def _bearer(self) -> str:
        value = self._token()
        if inspect.isawaitable(value):
            value = await value
        if not isinstance(value, str) or not value:
            raise AuthError("the credential returned no access token")
        return value

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        content: Body | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        retry_safe: bool | None = None,
    ) -> httpx.Response:
        """Send one request, retrying what `should_retry` allows; return a < 400 response.

        `auth=False` for pre-authenticated upload URLs (no Authorization header at all). An
        authenticated request may only go to the base URL's origin (ValueError otherwise).
        `retry_safe` overrides the method's idempotence for the retry decision: True for a POST
        whose repetition is harmless (createUploadSession, a folder with conflictBehavior
        fail), False for a PUT that must not run twice. `content` may be a memoryview; it is
        streamed without copying the whole of it.

        Raises the GraphError subclass for the final status, TransportError when no response
        came, AuthError when the token supplier gives nothing.
        """
        response, _ = await self._exchange(
            method,
            path_or_url,
            params=params,
            json=json,
            content=content,
            headers=headers,
            auth=auth,
            retry_safe=retry_safe,
        )
        return response

    async def _exchange(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        content: Body | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        retry_safe: bool | None = None,
        units: float | None = None,
    ) -> tuple[httpx.Response, Slot]:
        """`request()`, also returning the pacer slot of the attempt that answered; `units`
        prices the request in resource units when its method and URL cannot (a $batch)."""
        method = method.upper()
        url = self.url(path_or_url)
        if params:
            url = url.copy_merge_params({k: str(v) for k, v in params.items()})
        if url.scheme != "https":
            raise ValueError(f"refusing a request without TLS: {redact_url(url)}")
        if auth and not self._same_origin(url):
            raise ValueError(f"refusing to send a Graph token to {redact_url(url)}")
        idempotent = method in IDEMPOTENT_METHODS if retry_safe is None else retry_safe
        if units is None:
            units = request_units(method, url.path, url.query.decode("ascii", "replace"))
        shown = redact_url(url, pre_authenticated=not auth)
        refreshed = False
        attempt = 0
        while True:
            request_id = str(uuid.uuid4())
            outgoing = {
                "client-request-id": request_id,
                "return-client-request-id": "true",
                **(headers or {}),
            }
            if json is not None:
                outgoing.setdefault("Content-Type", "application/json")
            body = _stream(content, outgoing)
            response: httpx.Response | None = None
            failure: httpx.TransportError | None = None
            delay = 0.0
            async with self.pacer.slot(units) as slot:
                if auth:  # fetched after any throttle wait, so it is fresh when it is sent
                    outgoing["Authorization"] = "Bearer " + await self._bearer()
                try:
                    if auth:
                        response = await self._http.request(
                            method, url, json=json, content=body, headers=outgoing
                        )
                    else:  # pre-authenticated upload URLs: HTTP/1.1
                        with self._uploads.take() as http:
                            response = await http.request(
                                method, url, json=json, content=body, headers=outgoing
                            )
                except httpx.TransportError as exc:
                    failure = exc
                else:
                    # Recorded while the slot is held, so a throttle window is open before
                    # the next waiter is admitted.
                    delay = self.pacer.record(
                        response.status_code,
                        response.headers,
                        started=slot.started,
                        mark=slot.mark,
                    )
            if response is not None:
                if log.isEnabledFor(logging.DEBUG):  # redacting costs more than the check
                    log.debug(
                        "%s %s -> %d [client-request-id %s]",
                        method,
                        shown,
                        response.status_code,
                        request_id,
                    )
                if response.status_code < 400:
                    return response, slot
                if response.status_code == 401 and auth and not refreshed:
                    refreshed = True  # an expired token: fetch a new one, retry once
                    continue
                decision = should_retry(response.status_code, None, idempotent=idempotent)
            else:
                decision = should_retry(None, failure, idempotent=idempotent)
            if decision is Retry.NO or attempt + 1 >= self._max_attempts:
                if response is not None:
                    raise self._decode_error(response, method, shown, request_id, delay)
                assert failure is not None
                raise _transport_error(failure, method, url, request_id, auth) from failure
            log.info(
                "retrying %s %s (%s, attempt %d)",
                method,
                shown,
                response.status_code if response is not None else type(failure).__name__,
                attempt + 2,
            )
            await self.pacer.before_retry(attempt, throttled=decision is Retry.THROTTLED)
            attempt += 1

    @staticmethod
    def _decode_error(
        response: httpx.Response, method: str, shown: str, request_id: str, delay: float
    ) -> GraphError:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return error_from_body(
            response.status_code,
            body,
            method=method,
            url=shown,
            request_id=response.headers.get("request-id", ""),
            client_request_id=response.headers.get("client-request-id", request_id),
            reason=response.reason_phrase,
            retry_after=delay or None,
        )

    async def get_json(
        self, path_or_url: str, *, params: Mapping[str, str | int] | None = None
    ) -> Any:
        """GET and decode the JSON body."""
        return json_body(await self.request("GET", path_or_url, params=params))

    async def pages(
        self, path_or_url: str, *, params: Mapping[str, str | int] | None = None
    ) -> AsyncIterator[Mapping[str, Any]]:
        """GET a collection and follow `@odata.nextLink` (absolute) page by page."""
        page = json_body(await self.request("GET", path_or_url, params=params))
        while True:
            if not isinstance(page, Mapping):
                raise GraphError(f"Graph returned a page that is not a JSON object ({path_or_url})")
            yield page
            next_link = page.get("@odata.nextLink")
            if not isinstance(next_link, str):
                return
            page = json_body(await self.request("GET", next_link))

    async def batch(self, requests: Sequence[BatchRequest]) -> list[BatchResponse]:
        """Send up to 20 requests in one JSON $batch; return their responses in request order.

        Requests answered 429/503 inside the batch (Graph throttles each one on its own), and
        5xx for those that are `idempotent`, are sent again in a smaller batch after the pacer's
        wait; so are 424s whose failed dependency is being retried. A dependency that already
        succeeded is dropped from `dependsOn` in the retry. Other failures are returned, not
        raised: check `BatchResponse.ok` and use `.error(request)`.
        https://learn.microsoft.com/en-us/graph/json-batching
        """
        _check_batch(requests)
        pending = list(requests)
        results: dict[str, BatchResponse] = {}
        attempt = 0
        while pending:
            ids = {r.id for r in pending}
            payload = {
                "requests": [r.to_json([d for d in r.depends_on if d in ids]) for r in pending]
            }
            response, slot = await self._exchange(
                "POST",
                "$batch",
                json=payload,
                retry_safe=all(r.idempotent for r in pending),
                units=sum(request_units(r.method, *_path_and_query(r.url)) for r in pending),
            )
            answers = _batch_answers(json_body(response))
            retry: set[str] = set()
            throttled = False
            for req in pending:
                answer = answers.get(req.id)
                if answer is None:
                    raise GraphError(f"Graph's $batch answer has no response for id {req.id!r}")
                self.pacer.record(
                    answer.status, answer.headers, started=slot.started, mark=slot.mark
                )
                decision = should_retry(answer.status, None, idempotent=req.idempotent)
                if decision is not Retry.NO:
                    retry.add(req.id)
                    throttled = throttled or decision is Retry.THROTTLED
                elif answer.status == 424 and any(d in retry for d in req.depends_on):
                    retry.add(req.id)  # requests come after their dependencies
                results[req.id] = answer
            pending = [r for r in pending if r.id in retry]
            if not pending:
                break
            if attempt + 1 >= self._max_attempts:
                break
            await self.pacer.before_retry(attempt, throttled=throttled)
            attempt += 1
        return [results[r.id] for r in requests]


def _path_and_query(relative_url: str) -> tuple[str, str]:
    path, _, query = relative_url.partition("?")
    return path, query


def _check_batch(requests: Sequence[BatchRequest]) -> None:
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


def _batch_answers(body: Any) -> dict[str, BatchResponse]:
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


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body of a response; None for 204 or an empty body."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise GraphError(
            f"Graph returned a body that is not JSON ({response.request.method} "
            f"{redact_url(response.request.url)})"
        ) from None


def _stream(content: Body | None, headers: dict[str, str]) -> bytes | AsyncIterator[bytes] | None:
    """A fresh request body for one attempt; a memoryview is streamed in small pieces."""
    if content is None or isinstance(content, bytes):
        return content
    view = content.cast("B") if content.format != "B" or content.ndim != 1 else content
    if view.nbytes <= _STREAM_CHUNK:
        return bytes(view)  # one piece: a plain body is cheaper than a stream
    headers["Content-Length"] = str(view.nbytes)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, view.nbytes, _STREAM_CHUNK):
            yield bytes(view[start : start + _STREAM_CHUNK])

    return pieces()


def _transport_error(
    failure: httpx.TransportError, method: str, url: httpx.URL, request_id: str, auth: bool
) -> TransportError:
    detail = str(failure) or type(failure).__name__
    hidden = [url.query.decode("ascii", "replace")] + ([] if auth else [url.path])
    for part in hidden:
        if len(part) > 1:
            detail = detail.replace(part, "…")
    return TransportError(
        f"{type(failure).__name__}: {detail}",
        method=method,
        url=redact_url(url, pre_authenticated=not auth),
        client_request_id=request_id,
    )
