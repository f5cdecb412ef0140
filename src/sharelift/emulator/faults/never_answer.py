"""The "never answer" fault: a request is accepted, its body read, and no byte of an answer is
ever sent; the connection stays open until the client gives up. It is how a proxy or a front
end that hangs looks to a client, so that the client's connect and read timeouts can be tested.

`faults.never_answer` selects the requests, a comma-separated list of selectors (any one
matching is enough):

    kind:KIND      the request's kind (`classify`: identity, get, list, write, upload,
                   upload-session, download, batch, sharepoint, migration, ...)
    host:HOST      the Host (or HTTP/2 :authority) the client named, without the port
    path:PATTERN   the path, as a shell pattern (`/v1.0/drives/*`)
    signin         the sign-in endpoints (`/{tenant}/oauth2/...` and managed identity)
    upload-url     upload-session URLs
    all            every request (the admin endpoints excepted, as for every fault)
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from sharelift.emulator.asgi import drain, header_value
from sharelift.emulator.settings import Faults

if TYPE_CHECKING:  # rules imports this module for its list of rules
    from sharelift.emulator.faults.rules import Arrival

_UPLOAD_KINDS = ("upload", "upload-session")


def host_of(arrival: Arrival) -> str:
    """The host the client asked for, lower case, without a port."""
    host = (header_value(arrival.scope, b"host") or "").lower()
    if host.startswith("["):  # an IPv6 literal
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if ":" in host else host


def selected(selectors: str, arrival: Arrival) -> bool:
    """Whether `arrival` matches one of `selectors` (a checked `never_answer` value)."""
    path: str = arrival.scope["path"]
    kind = arrival.what.kind
    for selector in selectors.split(","):
        name, _, value = selector.partition(":")
        if (
            selector == "all"
            or (selector == "upload-url" and kind in _UPLOAD_KINDS)
            or (selector == "signin" and kind == "identity" and _is_sign_in(path))
            or (name == "kind" and kind == value)
            or (name == "host" and host_of(arrival) == value.lower())
            or (name == "path" and fnmatchcase(path, value))
        ):
            return True
    return False


def _is_sign_in(path: str) -> bool:
    return "/oauth2/" in path or path.startswith("/msi/")


async def never_answer(arrival: Arrival, faults: Faults) -> bool:
    """When the request is selected: read its body, then wait, without answering, until the
    client goes away (or the server stops)."""
    if not faults.never_answer or arrival.inner or not selected(faults.never_answer, arrival):
        return False
    arrival.mark("never_answered")
    await drain(arrival.receive)
    while (await arrival.receive())["type"] != "http.disconnect":
        pass
    return True
