"""The HTTP client for Microsoft Graph: authentication, pacing, retries, errors, paging.

`GraphClient` is the only object in sharelift that sends HTTP to Microsoft. It wraps an
`httpx.AsyncClient` (HTTP/2, TLS verification always on, proxies from the environment;
pre-authenticated URLs over HTTP/1.1 connections of their own, which move large bodies much
faster) and routes every exchange through the tenant's `Pacer`. One `should_retry`
(`graph/retry.py`) decides, for every call, whether a failure is worth another attempt. Its
parts: `transport.py` (TLS, timeouts, connections, bodies, what a message may show of a URL),
`batch.py` (JSON batching), `retry.py`, `pacer.py`, `errors.py`.

Secrets: the bearer token lives only in the Authorization header of the outgoing request; it is
never logged, stored on an error, or sent to any origin but the configured Graph base URL.
Pre-authenticated URLs (upload sessions, downloads: on the drive's SharePoint host in a real
tenant) are called without Authorization, and no message or log line shows more of them than
their host.
"""

from __future__ import annotations

import inspect
import logging
import os
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import IO, Any, Self

import httpx

from sharelift import __version__
from sharelift.errors import AuthError
from sharelift.graph.batch import MAX_BATCH, BatchRequest, BatchResponse, send_batch
from sharelift.graph.errors import GraphError, error_from_body
from sharelift.graph.pacer import Pacer, Slot, request_units
from sharelift.graph.retry import IDEMPOTENT_METHODS, Retry, should_retry
from sharelift.graph.transport import (
    Body,
    Connections,
    json_body,
    make_ssl_context,
    redact_url,
    stream_body,
    transport_error,
    url_label,
)
from sharelift.network import Timeouts

log = logging.getLogger("sharelift.graph")

GRAPH_GLOBAL = "https://graph.microsoft.com/v1.0"

# Microsoft asks for "ISV|CompanyName|AppName/Version" so that decorated traffic is recognised
# and prioritised:
# https://learn.microsoft.com/en-us/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online
USER_AGENT = f"ISV|sharelift|sharelift/{__version__}"

TIMEOUT_ATTEMPTS = 3
"""Attempts of one request that time out before it fails: each waited a whole timeout
already, so a host or proxy that never answers is reported within about three timeouts."""

TokenSupplier = Callable[[], str | Awaitable[str]]
"""Returns a bearer token for Graph; sync or async. Called before every authenticated request
(so it should cache, as MSAL does), and once more after a 401 to replace an expired token."""

__all__ = [
    "GRAPH_GLOBAL",
    "MAX_BATCH",
    "USER_AGENT",
    "BatchRequest",
    "BatchResponse",
    "GraphClient",
    "Retry",
    "TokenSupplier",
    "json_body",
    "make_ssl_context",
    "redact_url",
    "should_retry",
]


class GraphClient:
    """An authenticated, paced, retrying client for one Graph endpoint (one tenant).

    `base_url` is the version root: Graph global `https://graph.microsoft.com/v1.0`, another
    cloud's, or the emulator's `https://127.0.0.1:PORT/v1.0`. `verify` is a CA file to trust
    in addition to the system store, or a ready SSLContext (which must verify). `timeouts`
    bound every connection and every wait for an answer. `connect` maps host names to the
    `host:port` to connect to instead (the emulator's emulator.json `connect`: its upload and
    download URLs name SharePoint hosts; see `graph.connect`). `transport` replaces the
    network, for tests. Use as `async with GraphClient(...) as client:`.
    """

    def __init__(
        self,
        *,
        token: TokenSupplier,
        base_url: str = GRAPH_GLOBAL,
        pacer: Pacer | None = None,
        verify: ssl.SSLContext | str | os.PathLike[str] | None = None,
        timeouts: Timeouts | None = None,
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
        self.timeouts = timeouts or Timeouts()
        self._token = token
        self._max_attempts = max(1, max_attempts)
        if isinstance(verify, ssl.SSLContext):
            if verify.verify_mode != ssl.CERT_REQUIRED or not verify.check_hostname:
                raise ValueError("TLS verification cannot be turned off")
            context = verify
        else:
            context = make_ssl_context(verify)
        self._connections = Connections(
            context=context,
            timeouts=self.timeouts,
            connections=self.pacer.max_concurrency + 4,
            user_agent=user_agent,
            transport=transport,
            connect=connect,
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
        await self._connections.aclose()

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

        `auth=False` for pre-authenticated upload and download URLs (no Authorization header
        at all). An authenticated request may only go to the base URL's origin (ValueError
        otherwise). `retry_safe` overrides the method's idempotence for the retry decision:
        True for a POST whose repetition is harmless (createUploadSession, a folder with
        conflictBehavior fail), False for a PUT that must not run twice. `content` may be a
        memoryview; it is streamed without copying the whole of it. Redirects are not
        followed: a 302 (a download) is returned as it is.

        Raises the GraphError subclass for the final status, TransportError when no response
        came, AuthError when the token supplier gives nothing.
        """
        response, _ = await self.exchange(
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

    async def download(self, url: str, sink: IO[bytes]) -> int:
        """Stream the body of a pre-authenticated download URL into `sink` (no Authorization
        header goes there), a piece at a time: memory holds one piece, whatever the file's
        size. An attempt that breaks off is started again from the beginning (`sink` is
        truncated first). Returns the number of bytes written."""
        await self.exchange("GET", url, auth=False, sink=sink)
        return sink.tell()

    async def exchange(
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
        sink: IO[bytes] | None = None,
    ) -> tuple[httpx.Response, Slot]:
        """`request()`, also returning the pacer slot of the attempt that answered; `units`
        prices the request in resource units when its method and URL cannot (a $batch);
        `sink` takes the body of a successful answer (a download)."""
        method = method.upper()
        url = self.url(path_or_url)
        if params:
            url = url.copy_merge_params({k: str(v) for k, v in params.items()})
        what = "download URL" if sink is not None else "upload URL"
        label = url_label(url, preauthenticated=not auth, what=what)
        if url.scheme != "https":
            raise ValueError(f"refusing a request without TLS: {label}")
        if auth and not self._same_origin(url):
            raise ValueError(f"refusing to send a Graph token to {label}")
        idempotent = method in IDEMPOTENT_METHODS if retry_safe is None else retry_safe
        if units is None:
            units = request_units(method, url.path, url.query.decode("ascii", "replace"))
        refreshed = False
        attempt = timed_out = 0
        while True:
            request_id = str(uuid.uuid4())
            outgoing = {
                "client-request-id": request_id,
                "return-client-request-id": "true",
                **(headers or {}),
            }
            if json is not None:
                outgoing.setdefault("Content-Type", "application/json")
            body = stream_body(content, outgoing)
            response: httpx.Response | None = None
            failure: httpx.TransportError | None = None
            delay = 0.0
            async with self.pacer.slot(units) as slot:
                if auth:  # fetched after any throttle wait, so it is fresh when it is sent
                    outgoing["Authorization"] = "Bearer " + await self._bearer()
                try:
                    response = await self._connections.send(
                        method,
                        url,
                        json=json,
                        body=body,
                        headers=outgoing,
                        preauthenticated=not auth,
                        sink=sink,
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
                if log.isEnabledFor(logging.DEBUG):  # labelling costs more than the check
                    log.debug(
                        "%s %s -> %d [client-request-id %s]",
                        method,
                        label,
                        response.status_code,
                        request_id,
                    )
                if response.status_code < 400:
                    return response, slot
                if response.status_code == 401 and auth and not refreshed:
                    refreshed = True  # an expired token: fetch a new one, retry once
                    continue
                decision = should_retry(
                    response.status_code,
                    None,
                    idempotent=idempotent,
                    retry_after="Retry-After" in response.headers,
                )
            else:
                decision = should_retry(None, failure, idempotent=idempotent)
                timed_out += isinstance(failure, httpx.TimeoutException)
            if (
                decision is Retry.NO
                or attempt + 1 >= self._max_attempts
                or timed_out >= TIMEOUT_ATTEMPTS
            ):
                if response is not None:
                    raise _decode_error(response, method, label, request_id, delay)
                assert failure is not None
                raise transport_error(
                    failure, method, url, request_id, timeouts=self.timeouts, label=label
                ) from failure
            log.info(
                "retrying %s %s (%s, attempt %d)",
                method,
                label,
                response.status_code if response is not None else type(failure).__name__,
                attempt + 2,
            )
            # A pre-authenticated URL's server error is that request's own: it backs off
            # briefly, alone, and never pauses the tenant.
            await self.pacer.before_retry(
                attempt, throttled=decision is Retry.THROTTLED, short=not auth
            )
            attempt += 1

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
        """Send up to 20 requests in one JSON $batch; return their responses in request order
        (`graph/batch.py`). Failures are returned, not raised: check `BatchResponse.ok` and
        use `.error(request)`."""
        return await send_batch(self, requests, max_attempts=self._max_attempts)


def _decode_error(
    response: httpx.Response, method: str, label: str, request_id: str, delay: float
) -> GraphError:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    return error_from_body(
        response.status_code,
        body,
        method=method,
        url=label,
        request_id=response.headers.get("request-id", ""),
        client_request_id=response.headers.get("client-request-id", request_id),
        reason=response.reason_phrase,
        retry_after=delay or None,
    )
