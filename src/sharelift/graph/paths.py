"""Addressing a drive's items: path segments encoded for Graph URLs, and `DriveBase`, the part
every group of drive operations (`graph/drive.py` and the modules it is made of) shares.

https://learn.microsoft.com/graph/onedrive-addressing-driveitems: an item is reached by id
(`/drives/{d}/items/{id}`) or by path (`/drives/{d}/root:/a/b:` or `/items/{id}:/rel/path:`);
each path segment is percent-encoded on its own.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from sharelift.graph.client import GraphClient

ConflictBehavior = Literal["fail", "replace", "rename"]


def encode_segment(name: str) -> str:
    """One path segment percent-encoded as an RFC 3986 pchar-safe string.

    Everything but the unreserved characters is encoded, so `+` travels as `%2B` (a literal
    plus, never a space), `#` as `%23`, `%` as `%25`, non-ASCII as UTF-8 octets. Raises
    ValueError for an empty, `.` or `..` segment, or one containing `/`.
    """
    if name in ("", ".", "..") or "/" in name:
        raise ValueError(f"not a usable path segment: {name!r}")
    return quote(name, safe="")


def encode_path(path: str) -> str:
    """A relative path (`a/b c/d`) with each segment encoded on its own; "" for the root."""
    stripped = path.strip("/")
    if not stripped:
        return ""
    return "/".join(encode_segment(segment) for segment in stripped.split("/"))


def quote_id(value: str) -> str:
    """An id for a URL. Drive ids ("b!…"), site ids ("host,guid,guid") and item ids use
    pchar-safe characters; anything else is encoded so an id can never change the shape of
    the URL. Raises ValueError for an empty id."""
    if not value:
        raise ValueError("an empty id")
    return quote(value, safe="!,")


class DriveBase:
    """One drive over one GraphClient: its id and how its items are addressed. Cheap to
    create; holds no state but the drive id."""

    def __init__(self, client: GraphClient, drive_id: str) -> None:
        self.client = client
        self.drive_id = drive_id
        self._drive = f"/drives/{quote_id(drive_id)}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(drive_id={self.drive_id!r})"

    def item_url(self, item_id: str) -> str:
        """`/drives/{d}/items/{id}` (relative to the version root)."""
        return f"{self._drive}/items/{quote_id(item_id)}"

    def path_url(self, path: str, *, under: str | None = None, action: str = "") -> str:
        """An item addressed by path: `/drives/{d}/root:/a/b` or `/items/{under}:/a/b`.

        `action` ("children", "content", "createUploadSession") is appended after `:/`.
        An empty path means the root (or `under` itself).
        """
        base = self.item_url(under) if under is not None else f"{self._drive}/root"
        encoded = encode_path(path)
        if not encoded:
            return f"{base}/{action}" if action else base
        return f"{base}:/{encoded}:/{action}" if action else f"{base}:/{encoded}"
