"""Uploads: simple upload (`PUT …/content`) and upload sessions
(https://learn.microsoft.com/graph/api/driveitem-createuploadsession).

`PUT …/content` takes the whole body (up to `settings.simple_upload_limit`) and answers the
driveItem. `POST …/createUploadSession` answers an `uploadUrl` where SharePoint puts it: on the
drive's SharePoint host, authenticated by the URL itself,
`https://contoso-my.sharepoint.com/personal/megan_contoso_com/_api/v2.0/drives/{d}/items/{parent}/uploadSession?guid='{session}'&…&tempauth={token}`
(or the site's host and path for a library). That URL answers only on that host. Graph's page
says to send no Authorization header there ("If you include the Authorization header when
issuing the PUT call, it may result in an HTTP 401 Unauthorized response"); SharePoint Online
ignores one in practice (rclone 1.60 sends its token with every fragment and works), so the
emulator ignores it too and counts it (`bearer_on_upload_urls` in the stats), or answers 401
when `settings.refuse_bearer_on_upload_urls` is on. On it:

    PUT     one fragment, `Content-Range: bytes a-b/total`; fragments in order, each at most
            60 MiB and a multiple of 320 KiB (327,680 bytes) except the last. 202 with
            `nextExpectedRanges` until the last, which answers the driveItem (201 new, 200
            replaced). Overlap or a gap: 416; wrong lengths: 400.
    GET     the session's status (expirationDateTime, nextExpectedRanges)
    DELETE  cancel: 204
    POST    commit a session opened with `deferCommit: true` once every byte is in

A session expires `settings.upload_session_lifetime_s` after its last fragment; an expired,
cancelled or finished session answers 404. The name is checked again at commit time: a file that
appeared meanwhile under a `fail` session gives 409 nameAlreadyExists.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
import weakref
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import Response

from sharelift.emulator.graph.addressing import Address, parent_and_name, target
from sharelift.emulator.graph.request import (
    conflict_of,
    fs_times,
    identity_of,
    json_body,
    may_refuse_replace,
    on_site_of,
)
from sharelift.emulator.graph.wire import (
    GRAPH_CONTEXT,
    ItemRenderer,
    drive_error,
    iso,
    item_context,
    json_response,
    sharepoint_base,
)
from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store import (
    Content,
    Drive,
    DriveError,
    Item,
    Session,
    Stamp,
    Store,
    name_exists,
)
from sharelift.quickxorhash import QuickXorHash

FRAGMENT_UNIT = 320 * 1024
MAX_FRAGMENT = 60 * 1024 * 1024

_session_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


async def stage_body(request: Request, store: Store, limit: int | None = None) -> Content:
    """Stream the request body into the store's tmp folder, hashing it on the way."""
    path = store.files.staging_path()
    hasher = QuickXorHash()
    size = 0
    try:
        # Plain writes: a chunk into the page cache takes microseconds, while a worker-thread
        # round trip per write (anyio.open_file) cost more than the whole upload of a small file.
        with open(path, "wb") as f:  # noqa: ASYNC230
            async for chunk in request.stream():
                size += len(chunk)
                if limit is not None and size > limit:
                    raise too_large(limit)
                f.write(chunk)
                hasher.update(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Content(path, size, base64.b64encode(hasher.digest()).decode("ascii"))


def too_large(limit: int) -> DriveError:
    # The simple-upload page sets the limit (250 MB today, 4 MB in older pages); Graph's error
    # table answers an oversized body with 413 Request Entity Too Large.
    return DriveError(
        413,
        "requestEntityTooLarge",
        f"The request body is larger than the simple upload limit of {limit} bytes; "
        "use an upload session.",
    )


def upload_url(store: Store, drive: Drive, parent_id: str, session_id: str) -> str:
    """The session's upload URL on the drive's SharePoint host (see the module docstring)."""
    token = store.signer.sign(f"upload|{session_id}")
    return (
        f"{sharepoint_base(store, drive)}/_api/v2.0/drives/{drive.id}/items/{parent_id}"
        f"/uploadSession?guid='{session_id}'&overwrite=True&rename=False&dc=0"
        f"&cid={uuid.uuid4()}&tempauth={token}"
    )


def _session_of(request: Request, store: Store) -> Session:
    """The live session an upload URL names, checking its token, host and drive; raises the
    DriveError to answer."""
    session_id = request.query_params.get("guid", "").strip("'")
    token = request.query_params.get("tempauth", "")
    if not session_id or store.signer.unsign(token) != f"upload|{session_id}":
        raise DriveError(401, "unauthenticated", "Invalid or missing tempauth token.")
    settings: EmulatorSettings = request.app.state.settings
    if request.headers.get("authorization") and settings.refuse_bearer_on_upload_urls:
        raise DriveError(
            401,
            "unauthenticated",
            "An upload URL is authenticated by itself: send no Authorization header to it.",
        )
    session = store.sessions.get(session_id)
    if session is None:
        raise _gone()
    drive = store.tenant.drive(session.drive_id)
    if (
        drive is None
        or request.path_params["drive"] != drive.id
        or not on_site_of(request, store, drive)
    ):
        raise DriveError(401, "unauthenticated", "The tempauth token is not valid here.")
    return session


def _status(session: Session) -> dict[str, Any]:
    total = session.file_size
    done = total is not None and session.received >= total
    return {
        "expirationDateTime": iso(session.expires),
        "nextExpectedRanges": [] if done else [f"{session.received}-"],
    }


def _gone() -> DriveError:
    return DriveError(404, "itemNotFound", "The upload session was not found or has expired.")


_RANGE = re.compile(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*")


async def upload_endpoint(request: Request) -> Response:
    store: Store = request.app.state.store
    session_id = request.query_params.get("guid", "").strip("'")
    lock = _session_locks.get(session_id)
    if lock is None:
        lock = asyncio.Lock()
        _session_locks[session_id] = lock
    try:
        async with lock:
            session = _session_of(request, store)
            if request.method == "GET":
                return json_response(request, _status(session))
            if request.method == "DELETE":
                store.sessions.drop(session_id)
                return Response(status_code=204)
            if request.method == "POST":
                if session.file_size is None or session.received < session.file_size:
                    raise DriveError(400, "invalidRequest", "The upload is not complete.")
                _may_refuse(request, store, session)
                return await _commit(request, store, session)
            return await _fragment(request, store, session)
    except DriveError as exc:
        return drive_error(request, exc)


async def _fragment(request: Request, store: Store, session: Session) -> Response:
    header = request.headers.get("content-range")
    m = _RANGE.fullmatch(header or "")
    if m is None or m.group(3) == "*":
        raise DriveError(
            400, "invalidRequest", "A Content-Range header of the form bytes a-b/total is required."
        )
    start, end, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
    length = end - start + 1
    if end < start or end >= total:
        raise DriveError(400, "invalidRequest", f"Invalid Content-Range: {header}")
    if session.file_size is not None and total != session.file_size:
        raise DriveError(
            400,
            "invalidRequest",
            f"The Content-Range total {total} does not match the file size {session.file_size}.",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) != length:
        raise DriveError(
            400,
            "invalidRequest",
            "The Content-Range header length does not match the provided number of bytes.",
        )
    if length > MAX_FRAGMENT:
        raise DriveError(
            400, "invalidRequest", "A fragment must be smaller than 60 MiB (62,914,560 bytes)."
        )
    if start != session.received:
        # Fragments go in order; an overlap (or a gap) is refused with 416.
        raise DriveError(
            416,
            "invalidRange",
            "The uploaded fragment overlaps with data that has already been received."
            if start < session.received
            else f"Fragments must be uploaded in order; expected a fragment at {session.received}.",
            inner_code="fragmentOverlap" if start < session.received else "fragmentOutOfOrder",
        )
    if end + 1 != total and length % FRAGMENT_UNIT:
        raise DriveError(
            400,
            "invalidRequest",
            "Fragment sizes must be a multiple of 320 KiB (327,680 bytes), except the last.",
        )
    if end + 1 == total and not session.defer_commit:
        _may_refuse(request, store, session)
    path = store.sessions.file(session.id)
    received = 0
    with open(path, "r+b") as f:  # noqa: ASYNC230 — see stage_body
        f.seek(start)
        async for chunk in request.stream():
            received += len(chunk)
            if received > length:
                break
            f.write(chunk)
        # Cut whatever an interrupted earlier attempt left beyond this fragment.
        f.truncate(start if received != length else start + length)
        if received != length:
            raise DriveError(
                400,
                "invalidRequest",
                "The Content-Range header length does not match the provided number of bytes.",
            )
    session = store.sessions.received(session.id, end + 1, total)
    if end + 1 < total or session.defer_commit:
        return json_response(request, _status(session), 202)
    return await _commit(request, store, session)


def _may_refuse(request: Request, store: Store, session: Session) -> None:
    """SharePoint may refuse the bytes that would replace an Office file with 404 itemNotFound
    (OneDrive/onedrive-api-docs#1068); the session stays as it was."""
    replaces = session.item_id is not None or (
        session.conflict == "replace"
        and store.items.child(session.drive_id, session.parent_id, session.name) is not None
    )
    drive = store.tenant.drive(session.drive_id)
    if replaces and drive is not None:
        may_refuse_replace(request, drive, session.name)


async def _commit(request: Request, store: Store, session: Session) -> Response:
    # Hashing a large file takes seconds: off the event loop, so other requests go on.
    item, created = await anyio.to_thread.run_sync(store.sessions.commit, session)
    drive = store.tenant.drive(session.drive_id)
    assert drive is not None
    return _item_response(request, store, drive, item, created)


def _item_response(
    request: Request, store: Store, drive: Drive, item: Item, created: bool
) -> Response:
    """The driveItem of a finished upload: 201 when it created the file, else 200."""
    renderer = ItemRenderer(request, store, drive)
    body = {"@odata.context": item_context(drive), **renderer.render(item)}
    return json_response(request, body, 201 if created else 200)


async def put_content(request: Request, store: Store, address: Address) -> Response:
    """Simple upload (https://learn.microsoft.com/graph/api/driveitem-put-content): new file by
    path (201) or new content for an existing file (200)."""
    by = identity_of(request)
    limit = request.app.state.settings.simple_upload_limit
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    conflict = conflict_of(request, None, "replace")
    if address.rel_path is None:
        existing: Item | None = target(store, address)
        parent = None
        name = ""
    else:
        parent, name, existing = parent_and_name(store, address, by)
    if (
        existing is not None
        and not existing.is_folder
        and (address.rel_path is None or conflict == "replace")
    ):
        may_refuse_replace(request, address.drive, existing.name)
    content = await stage_body(request, store, limit)
    if existing is not None and (address.rel_path is None or conflict == "replace"):
        if existing.is_folder and address.rel_path is not None:
            content.path.unlink(missing_ok=True)
            raise name_exists()
        item = store.files.replace(address.drive.id, existing.id, content, Stamp(by))
        created = False
    else:
        assert parent is not None
        item, created = store.files.put(
            address.drive.id, parent.id, name, content, conflict, Stamp(by)
        )
    return _item_response(request, store, address.drive, item, created)


async def create_upload_session(request: Request, store: Store, address: Address) -> Response:
    """Open an upload session for a new file by path, a new file in a folder (`item.name`),
    or new content of a file; answers its uploadUrl."""
    body = await json_body(request)
    item_props = body.get("item") or {}
    if not isinstance(item_props, dict):
        raise DriveError(400, "invalidRequest", "item must be an object.")
    by = identity_of(request)
    conflict = conflict_of(request, item_props, "replace")
    fs_created, fs_modified = fs_times(item_props.get("fileSystemInfo"))
    file_size = item_props.get("fileSize", body.get("fileSize"))
    if file_size is not None and (not isinstance(file_size, int) or file_size < 0):
        raise DriveError(400, "invalidRequest", "fileSize must be a non-negative integer.")
    drive_id = address.drive.id
    replace_id: str | None = None
    if address.rel_path is None:
        existing = target(store, address)
        if existing.is_folder and isinstance(item_props.get("name"), str):
            # /items/{folder}/createUploadSession with item.name: a new file in that folder.
            parent, name = existing, str(item_props["name"])
        elif existing.is_folder:
            raise DriveError(400, "invalidRequest", "Cannot upload content to a folder.")
        else:
            replace_id = existing.id
            assert existing.parent_id is not None
            parent_item = store.items.get(drive_id, existing.parent_id)
            assert parent_item is not None
            parent, name = parent_item, existing.name
    else:
        parent, name, _ = parent_and_name(store, address, by)
    session = store.sessions.create(
        drive_id,
        parent.id,
        name,
        replace_id,
        conflict,
        Stamp(by, fs_created, fs_modified),
        file_size=file_size,
        defer_commit=bool(body.get("deferCommit", False)),
    )
    out = {
        "@odata.context": f"{GRAPH_CONTEXT}#microsoft.graph.uploadSession",
        "uploadUrl": upload_url(store, address.drive, parent.id, session.id),
        "expirationDateTime": iso(session.expires),
        "nextExpectedRanges": ["0-"],
    }
    return json_response(request, out)
