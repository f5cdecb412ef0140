"""Graph addresses: which drive and item a `/v1.0/…` path names, and what it asks of it.

Graph addresses items with `:`-delimited paths (`/drives/{d}/root:/a/b:/children`,
https://learn.microsoft.com/onedrive/developer/rest-api/concepts/addressing-driveitems). Names
cannot contain `:`, so after percent-decoding the colons are unambiguous delimiters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sharelift.emulator.store import (
    Drive,
    DriveError,
    Identity,
    Item,
    Stamp,
    Store,
    not_found,
    split_path,
)


def bad_segment(segment: str) -> DriveError:
    return DriveError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


@dataclass
class Address:
    """A parsed Graph path below a drive."""

    drive: Drive
    base_id: str | None = None
    """`root` / `items/{id}`: the item the path starts from; None = the drive itself."""
    rel_path: str | None = None
    """The `:/a/b:` part, when present."""
    action: str = ""
    """"", "children", "content", "createUploadSession", "delta", "versions"."""
    action_arg: str | None = None
    """The version id of `versions/{id}` (and "content" after it, in `action_tail`)."""
    action_tail: str = ""


def take_segment(rest: str) -> tuple[str, str]:
    """ "a/b" -> ("a", "/b"); stops at '/' or ':'."""
    m = re.match(r"([^/:]*)(.*)", rest, re.S)
    assert m is not None
    return m.group(1), m.group(2)


def colon_path(rest: str) -> tuple[str, str]:
    """ ":/a/b:/children" -> ("/a/b", "/children"); ":/a/b" -> ("/a/b", "")."""
    assert rest.startswith(":")
    body = rest[1:]
    end = body.find(":")
    if end < 0:
        return body, ""
    return body[:end], body[end + 1 :]


def parse_item_address(drive: Drive, rest: str) -> Address:
    """`rest` follows the drive: "", "/root…", "/items/{id}…"."""
    if rest in ("", "/"):
        return Address(drive)
    if rest.startswith("/root"):
        base_id, tail = drive.root_id, rest[len("/root") :]
    elif rest.startswith("/items/"):
        item_id, tail = take_segment(rest[len("/items/") :])
        base_id = drive.root_id if item_id == "root" else item_id
    else:
        raise bad_segment(take_segment(rest.lstrip("/"))[0])
    address = Address(drive, base_id)
    if tail.startswith(":"):
        address.rel_path, tail = colon_path(tail)
    parts = [p for p in tail.split("/") if p]
    if parts:
        address.action = parts[0]
        if len(parts) > 1:
            address.action_arg = parts[1]
            address.action_tail = "/".join(parts[2:])
    return address


def target(store: Store, address: Address) -> Item:
    """The existing item an address names, or 404 itemNotFound."""
    assert address.base_id is not None
    if address.rel_path is None:
        item = store.items.get(address.drive.id, address.base_id)
    else:
        item = store.items.resolve(address.drive.id, address.base_id, address.rel_path)
    if item is None:
        raise not_found()
    return item


def parent_and_name(store: Store, address: Address, by: Identity) -> tuple[Item, str, Item | None]:
    """For a path address naming a possibly-new item: (parent folder, leaf name, the item if
    it exists). Missing intermediate folders are created, as OneDrive does when uploading by
    path."""
    assert address.base_id is not None and address.rel_path is not None
    segments = split_path(address.rel_path)
    if not segments:
        raise DriveError(400, "invalidRequest", "A file name is required.")
    drive_id = address.drive.id
    parent = store.folders.ensure(drive_id, address.base_id, segments[:-1], Stamp(by))
    return parent, segments[-1], store.items.child(drive_id, parent.id, segments[-1])
