"""httpx clients for tests that talk to the emulator by hand, as a Graph client must: trusting
its CA, reaching its SharePoint hosts (upload and download URLs) through emulator.json's
connect map, and sending the bearer token to Graph's origin only."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import httpx

from sharelift.graph.connect import AsyncConnectTransport, connect_mounts_sync


class GraphBearer(httpx.Auth):
    """A bearer token sent to Graph's origin only: upload and download URLs are authenticated
    by themselves."""

    def __init__(self, graph_url: str, token: str) -> None:
        origin = httpx.URL(graph_url)
        self.origin = (origin.host, origin.port)
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if (request.url.host, request.url.port) == self.origin:
            request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


def graph_http(info: dict[str, Any], token: str, **options: Any) -> httpx.Client:
    """An httpx.Client on the emulator's Graph URL with `token` (see the module docstring)."""
    context = ssl.create_default_context(cafile=info["ca_file"])
    options.setdefault("http2", True)
    options.setdefault("timeout", 60)
    return httpx.Client(
        base_url=info["graph_url"],
        verify=context,
        auth=GraphBearer(info["graph_url"], token),
        mounts=connect_mounts_sync(info["connect"], verify=context, http2=options["http2"]),
        **options,
    )


class EmulatorTransport(httpx.AsyncBaseTransport):
    """The network to the emulator, for tests that wrap a transport of their own: the tenant's
    SharePoint hosts through emulator.json's connect map, every other host directly.
    `options` go to each httpx.AsyncHTTPTransport (verify, http2, ...)."""

    def __init__(self, info: dict[str, Any], **options: Any) -> None:
        self._direct = httpx.AsyncHTTPTransport(**options)
        self._mapped: dict[str, httpx.AsyncBaseTransport] = {
            host: AsyncConnectTransport(address, **options)
            for host, address in info["connect"].items()
        }

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._mapped.get(request.url.host, self._direct)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in (self._direct, *self._mapped.values()):
            await transport.aclose()
