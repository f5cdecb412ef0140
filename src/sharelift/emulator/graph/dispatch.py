"""The router of `/v1.0/{path}`: from the path to the directory (users, sites, drives) and,
below a drive, to the handler registered for (method, action) in `ACTIONS`.

A new kind of request on items is a handler in its own module plus one entry in `ACTIONS`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from sharelift.emulator.graph import copies, delta, directory, downloads, items, uploads, versions
from sharelift.emulator.graph.addressing import (
    Address,
    bad_segment,
    parse_item_address,
    take_segment,
)
from sharelift.emulator.graph.request import only_get, store_of
from sharelift.emulator.graph.wire import (
    GRAPH_CONTEXT,
    drive_error,
    drive_json,
    error_response,
    json_response,
    list_json,
    select,
)
from sharelift.emulator.store import Drive, DriveError, Store

log = logging.getLogger(__name__)

Handler = Callable[[Request, Store, Address], Awaitable[Response]]

ACTIONS: dict[tuple[str, str], Handler] = {
    ("GET", ""): items.get_item,
    ("PATCH", ""): items.patch_item,
    ("DELETE", ""): items.delete_item,
    ("GET", "children"): items.list_children,
    ("POST", "children"): items.create_child,
    ("GET", "content"): downloads.get_content,
    ("POST", "copy"): copies.copy_item,
    ("PUT", "content"): uploads.put_content,
    ("POST", "createUploadSession"): uploads.create_upload_session,
    ("GET", "versions"): versions.list_versions,
    ("DELETE", "versions"): versions.delete_version,
    ("GET", "delta"): delta.delta,
}


async def graph_endpoint(request: Request) -> Response:
    try:
        return await dispatch(request, "/" + request.path_params["path"])
    except DriveError as exc:
        return drive_error(request, exc)
    except Exception:
        # A bug here must still answer in Graph's error shape, as Graph's own 500s do.
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return error_response(request, 500, "generalException", "An internal error occurred.")


async def dispatch(request: Request, path: str) -> Response:
    """Answer the Graph request for `path` (below /v1.0); raises DriveError."""
    store = store_of(request)
    head, rest = take_segment(path.lstrip("/"))
    if head == "drive":
        # `/drive` is Graph's shorthand for `/me/drive`.
        head, rest = "me", "/drive" + rest
    found: Response | directory.DriveHop
    if head == "me":
        principal = getattr(request.state, "principal", None)
        if principal is None or principal.kind != "user" or not principal.upn:
            raise DriveError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        found = directory.user_routes(request, principal.upn, rest)
    elif head == "users":
        if rest in ("", "/"):
            return directory.list_users(request, store)
        upn, rest = take_segment(rest[1:])
        found = directory.user_routes(request, upn, rest)
    elif head == "sites":
        found = directory.site_routes(request, store, rest)
    elif head == "drives" and rest.startswith("/"):
        drive_id, rest = take_segment(rest[1:])
        drive = store.tenant.drive(drive_id)
        if drive is None:
            raise DriveError(404, "itemNotFound", "The drive could not be found.")
        found = drive, rest
    else:
        raise bad_segment(head)
    if isinstance(found, Response):
        return found
    return await drive_routes(request, *found)


async def drive_routes(request: Request, drive: Drive, rest: str) -> Response:
    """The drive itself, or the handler in `ACTIONS` for what the path asks of an item."""
    store = store_of(request)
    if rest.rstrip("/") == "/list":
        only_get(request)
        body = {"@odata.context": f"{GRAPH_CONTEXT}#lists/$entity", **list_json(store, drive)}
        return json_response(request, select(body, request))
    address = parse_item_address(drive, rest)
    if address.base_id is None:
        only_get(request)
        body = {"@odata.context": f"{GRAPH_CONTEXT}#drives/$entity", **drive_json(store, drive)}
        return json_response(request, select(body, request))
    handler = ACTIONS.get((request.method, address.action))
    if handler is None:
        if address.action not in {action for _, action in ACTIONS}:
            raise bad_segment(address.action)
        raise DriveError(
            405, "methodNotAllowed", f"{request.method} is not supported on this resource."
        )
    return await handler(request, store, address)
