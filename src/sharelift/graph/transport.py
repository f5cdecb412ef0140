"""How `GraphClient` reaches the network: TLS, timeouts, connections, request bodies, and what
an error may say about a URL.

- `make_ssl_context`: a verifying context (the system store, certifi, one more CA).
- `http_timeout`: the client's `httpx.Timeout` from `sharelift.network.Timeouts`.
- `Connections`: the clients one GraphClient sends through: HTTP/2 for Graph, and
  `ConnectionStack`, HTTP/1.1 clients of one connection each, for pre-authenticated URLs.
- `stream_body`: a fragment held in a reusable buffer, sent without copying it whole.
- `url_label`: a URL as an error or a log may show it. Graph API URLs lose their query string;
  pre-authenticated URLs (upload sessions, downloads) show only their host: the service puts
  their credential in the query (`tempauth=`) or in the path, and neither may reach a message,
  a report, the state store or a log (DESIGN.md invariant 6).
- `json_body`: a response's JSON.
- `transport_error`: a `TransportError` whose one line names the host, the proxy in use and
  what to check (`sharelift.network.describe_failure`).
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import IO, Any

import certifi
import httpx

from sharelift.graph.connect import connect_mounts
from sharelift.graph.errors import GraphError, TransportError
from sharelift.network import Timeouts, describe_failure

Body = bytes | memoryview

# Fragment bodies given as a memoryview are streamed in pieces of this size, so no second copy
# of the fragment is made (TLS encrypts and the socket sends piece by piece).
_STREAM_CHUNK = 1 << 18


def http_timeout(timeouts: Timeouts) -> httpx.Timeout:
    """Connect within `timeouts.connect`; every read and write within `timeouts.read`. Waiting
    for a pooled connection is not limited here: the tenant's pacer bounds the requests in
    flight, so that wait is the pacer's."""
    return httpx.Timeout(
        connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=None
    )


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


def redact_url(url: httpx.URL | str) -> str:
    """The URL without its query string (a Graph URL's query may carry a skip token)."""
    parsed = httpx.URL(str(url))
    text = str(parsed.copy_with(query=None, fragment=None))
    return text + ("?…" if parsed.query else "")


def url_label(url: httpx.URL | str, *, preauthenticated: bool, what: str = "upload URL") -> str:
    """A URL as messages and logs may show it: a pre-authenticated URL (an upload session's,
    a download's: `what`) as `https://host/… (upload URL)`, whatever its shape; any other
    without its query."""
    if not preauthenticated:
        return redact_url(url)
    parsed = httpx.URL(str(url))
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}/… ({what})"


class ConnectionStack:
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


class Connections:
    """The connections of one GraphClient: Graph calls over one shared HTTP/2 client,
    pre-authenticated URLs (upload sessions, downloads) over HTTP/1.1 clients of one
    connection each (`ConnectionStack`). TLS always verified, proxies from the environment,
    every call under `timeouts`. `connect` sends the hosts it names to another address (the
    emulator's SharePoint hosts: `graph/connect.py`). `transport` replaces the network for
    every request (tests).
    """

    def __init__(
        self,
        *,
        context: ssl.SSLContext,
        timeouts: Timeouts,
        connections: int,
        user_agent: str,
        transport: httpx.AsyncBaseTransport | None = None,
        connect: Mapping[str, str] | None = None,
    ) -> None:
        timeout = http_timeout(timeouts)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        mapped = {} if transport is not None else dict(connect or {})
        self.graph = httpx.AsyncClient(
            http2=True,
            verify=context,
            trust_env=True,  # HTTPS_PROXY / NO_PROXY, for Graph and pre-authenticated URLs alike
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
        self._preauthenticated = ConnectionStack(
            lambda: (
                httpx.AsyncClient(
                    http2=False,
                    verify=context,
                    trust_env=True,
                    timeout=timeout,
                    limits=one,
                    headers={"User-Agent": user_agent},
                    follow_redirects=False,
                    mounts=connect_mounts(mapped, verify=context, limits=one),
                )
                if transport is None
                else self.graph
            )  # tests: one seam for every request
        )

    async def send(
        self,
        method: str,
        url: httpx.URL,
        *,
        json: Any,
        body: bytes | AsyncIterator[bytes] | None,
        headers: dict[str, str],
        preauthenticated: bool,
        sink: IO[bytes] | None,
    ) -> httpx.Response:
        """One attempt; a successful answer's body streamed into `sink` when given (which is
        truncated first: an attempt starts from the beginning)."""
        if not preauthenticated:
            http = self.graph
            built = http.build_request(method, url, json=json, content=body, headers=headers)
            response = await http.send(built, stream=sink is not None)
        else:
            with self._preauthenticated.take() as http:
                built = http.build_request(method, url, json=json, content=body, headers=headers)
                response = await http.send(built, stream=sink is not None)
        if sink is None:
            return response
        try:
            if response.status_code >= 300:
                await response.aread()
                return response
            sink.seek(0)
            sink.truncate()
            async for piece in response.aiter_bytes():
                sink.write(piece)
            return response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._preauthenticated.aclose(keep=self.graph)
        await self.graph.aclose()


def stream_body(
    content: Body | None, headers: dict[str, str]
) -> bytes | AsyncIterator[bytes] | None:
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


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body of a response; None for 204 or an empty body. Raises GraphError
    for a body that is not JSON (naming the host only: the response may be an upload URL's)."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise GraphError(
            f"Graph returned a body that is not JSON ({response.request.method} "
            f"{url_label(response.request.url, preauthenticated=True)})"
        ) from None


def transport_error(
    failure: httpx.TransportError,
    method: str,
    url: httpx.URL,
    request_id: str,
    *,
    timeouts: Timeouts,
    label: str,
) -> TransportError:
    """No answer came: the host, the proxy and what to check, never the URL's secrets
    (`label` is the URL as a message may show it)."""
    return TransportError(
        f"{type(failure).__name__}: {describe_failure(failure, str(url), timeouts)}",
        method=method,
        url=label,
        client_request_id=request_id,
    )
