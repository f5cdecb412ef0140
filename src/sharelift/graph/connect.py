"""Reaching a host at another address: the local emulator's `connect` map.

Microsoft hands out upload and download URLs on the drive's SharePoint host
(`https://contoso-my.sharepoint.com/personal/…/_api/v2.0/…/uploadSession?…&tempauth=…`). The
emulator does the same, and serves those hosts on its one local port; its emulator.json says
where, as `"connect": {"contoso-my.sharepoint.com": "127.0.0.1:8443", …}`. A client keeps the
URL as it is (the host name for TLS SNI, certificate checks and the Host header) and only
connects elsewhere, like curl's `--connect-to`.

    mounts = connect_mounts({"contoso.sharepoint.com": "127.0.0.1:8443"}, verify=context)
    httpx.AsyncClient(verify=context, mounts=mounts)        # trust_env proxies still apply

A host that the environment sends through a proxy (HTTPS_PROXY, unless NO_PROXY names it) is
not mounted: the proxy is asked for the real host name, as it would be for Microsoft's, and a
proxy in front of the emulator maps it (tests/support/connect_proxy.py does).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from typing import Any

import httpx


def split_address(address: str) -> tuple[str, int]:
    """`host:port` (`[::1]:port` for IPv6) -> (host, port); ValueError when it is not one."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or not host:
        raise ValueError(f"not a host:port address: {address!r}")
    return host.strip("[]"), int(port)


def proxied(host: str) -> bool:
    """Whether the environment sends HTTPS to `host` through a proxy, read as httpx reads it
    (HTTPS_PROXY or ALL_PROXY; NO_PROXY: `*`, a name and its subdomains, `.name` for its
    subdomains only)."""
    proxies = urllib.request.getproxies()
    if not (proxies.get("https") or proxies.get("all")):
        return False
    host = host.lower()
    for entry in proxies.get("no", "").split(","):
        entry = entry.strip().lower()
        if entry == "*":
            return False
        if "://" in entry:
            entry = httpx.URL(entry).host
        entry = entry.lstrip("*")
        if not entry:
            continue
        if entry.startswith("."):
            if host.endswith(entry) and host != entry[1:]:
                return False
        elif host == entry or host.endswith("." + entry):
            return False
    return True


class AsyncConnectTransport(httpx.AsyncBaseTransport):
    """Sends each request to `address` instead of its URL's host and port, keeping the URL's
    host for TLS (SNI and the certificate's name) and for the Host header. `transport_options`
    go to the httpx.AsyncHTTPTransport underneath (verify, http2, limits, ...)."""

    def __init__(self, address: str, **transport_options: Any) -> None:
        self._host, self._port = split_address(address)
        self._inner = httpx.AsyncHTTPTransport(**transport_options)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(_redirected(request, self._host, self._port))

    async def aclose(self) -> None:
        await self._inner.aclose()


class ConnectTransport(httpx.BaseTransport):
    """The blocking twin of AsyncConnectTransport (for httpx.Client)."""

    def __init__(self, address: str, **transport_options: Any) -> None:
        self._host, self._port = split_address(address)
        self._inner = httpx.HTTPTransport(**transport_options)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(_redirected(request, self._host, self._port))

    def close(self) -> None:
        self._inner.close()


def _redirected(request: httpx.Request, host: str, port: int) -> httpx.Request:
    """The same request (headers, body, extensions) sent to host:port, with the original host
    as the TLS server name. Its Host header was set from the URL when it was built."""
    original = request.url.host
    return httpx.Request(
        request.method,
        request.url.copy_with(host=host, port=port),
        headers=request.headers,
        stream=request.stream,
        extensions={**request.extensions, "sni_hostname": original},
    )


def connect_mounts(
    connect: Mapping[str, str] | None, **transport_options: Any
) -> dict[str, httpx.AsyncBaseTransport]:
    """httpx `mounts` sending HTTPS for each host of `connect` to its address, except hosts the
    environment sends through a proxy. Empty for no map (a real cloud)."""
    return {
        f"https://{host}": AsyncConnectTransport(address, **transport_options)
        for host, address in (connect or {}).items()
        if not proxied(host)
    }


def connect_mounts_sync(
    connect: Mapping[str, str] | None, **transport_options: Any
) -> dict[str, httpx.BaseTransport]:
    """`connect_mounts` for httpx.Client."""
    return {
        f"https://{host}": ConnectTransport(address, **transport_options)
        for host, address in (connect or {}).items()
        if not proxied(host)
    }
