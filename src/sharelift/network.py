"""Where a request goes, and how to say that it could not get there.

Every network call of sharelift (sign-in through MSAL and requests; Graph, uploads, downloads and
SharePoint REST through httpx) has a connect and a read timeout (`Timeouts`, from the options
`connect_timeout` and `read_timeout`). When one fails for good, `describe_failure` makes the
one line a person reads: the host, the proxy the environment names for it (`HTTPS_PROXY`,
`ALL_PROXY`, `NO_PROXY`, as both httpx and requests read them; credentials in the proxy URL are
never shown) and what to check. It never repeats a URL's path or query: an upload or download
URL carries its credential there.
"""

from __future__ import annotations

import errno
import ssl
import urllib.parse
import urllib.request
from dataclasses import dataclass

from sharelift.config import default


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection (`connect`, a proxy's tunnel included) and for any
    byte of an answer, or for the far end to take more of a request body (`read`)."""

    connect: float = default("connect_timeout")
    read: float = default("read_timeout")


def proxy_for(url: str) -> str | None:
    """The proxy the environment names for `url` (scheme, host and port; no credentials), or
    None when the request goes direct (no proxy set, or the host is in NO_PROXY)."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    host = (parts.hostname or "").lower()
    if _bypassed(host, proxies.get("no", "")):
        return None
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy:
        return None
    shown = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    netloc = shown.hostname or ""
    if shown.port is not None:
        netloc += f":{shown.port}"
    return f"{shown.scheme}://{netloc}"


def _bypassed(host: str, no_proxy: str) -> bool:
    """NO_PROXY as curl, requests and httpx read it: `*`, or names and domains (a leading dot
    optional) that the host is or ends in; a port after a name is ignored here."""
    for entry in no_proxy.replace(" ", "").lower().split(","):
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        name = name.lstrip(".")
        if entry == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def host_of(url: str) -> str:
    """`host` or `host:port` of a URL (the port only when it is not the scheme's own)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    standard = {"https": 443, "http": 80}.get(parts.scheme)
    return host if parts.port in (None, standard) else f"{host}:{parts.port}"


def _via(proxy: str | None) -> str:
    return f" through the proxy {proxy} (from the environment)" if proxy else " (no proxy)"


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and what it wraps: its cause and context, and the exceptions requests and
    urllib3 keep in `reason` and in their arguments (a ConnectionError holds a MaxRetryError
    whose reason is the proxy's or the socket's error)."""
    seen: list[BaseException] = []
    todo = [error]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        nested += list(current.args)
        todo += [n for n in nested if isinstance(n, BaseException)]
    return seen


def _reason(error: BaseException) -> str:
    """A short reason from the innermost OS error (never a library message, which may carry
    the URL); the exception's class name when there is none."""
    for seen in _chain(error):
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen.strerror or errno.errorcode.get(seen.errno, str(seen.errno))
    return type(error).__name__


def is_certificate_error(error: BaseException) -> bool:
    """True when `error` (or what caused it) is a failed TLS certificate verification."""
    chain = _chain(error)
    if any(isinstance(seen, ssl.SSLCertVerificationError) for seen in chain):
        return True
    return any("CERTIFICATE_VERIFY_FAILED" in str(seen) for seen in chain)


def _kind(error: BaseException) -> str:
    """What went wrong, by the names httpx, requests and urllib3 give their exceptions,
    anywhere in what `error` wraps (a timeout inside a proxy error is a timeout)."""
    names = {cls.__name__ for seen in _chain(error) for cls in type(seen).__mro__}
    if is_certificate_error(error):
        return "certificate"
    if names & {"ConnectTimeout", "ConnectTimeoutError", "PoolTimeout"}:
        return "connect_timeout"
    if names & {"ReadTimeout", "ReadTimeoutError", "WriteTimeout"}:
        return "read_timeout"
    if names & {"ProxyError"}:
        return "proxy"
    if names & {"ConnectError", "NewConnectionError", "ConnectionRefusedError"}:
        return "connect"
    return "broken"


def describe_failure(error: BaseException, url: str, timeouts: Timeouts) -> str:
    """One line for a request to `url` that got no answer: host, proxy, what to check."""
    host = host_of(url)
    proxy = proxy_for(url)
    via = _via(proxy)
    kind = _kind(error)
    if kind == "connect_timeout":
        return (
            f"no connection to {host} within {timeouts.connect:g} s{via}; check the network, "
            "the proxy settings (HTTPS_PROXY, NO_PROXY) and any firewall, or raise "
            "connect_timeout"
        )
    if kind == "read_timeout":
        return (
            f"{host} did not answer within {timeouts.read:g} s{via}; check the proxy and the "
            "network, or raise read_timeout"
        )
    if kind == "proxy":
        return (
            f"the proxy {proxy or '(none set)'} did not open a connection to {host} "
            f"({_reason(error)}); check the proxy settings (HTTPS_PROXY, NO_PROXY)"
        )
    if kind == "certificate":
        return (
            f"the TLS certificate of {host} is not trusted{via}; behind a TLS-inspecting "
            "proxy, trust the proxy's CA with ca_bundle"
        )
    if kind == "connect":
        return (
            f"cannot connect to {host}{via} ({_reason(error)}); check the network, DNS and the "
            "proxy settings (HTTPS_PROXY, NO_PROXY)"
        )
    return f"the connection to {host} broke{via} ({_reason(error)})"
