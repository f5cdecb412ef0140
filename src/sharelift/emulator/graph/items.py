"""Items and children: GET, PATCH (rename, move, times), DELETE, list children, create a folder
(https://learn.microsoft.com/graph/api/resources/driveitem)."""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sharelift.emulator.graph.addressing import Address, target
from sharelift.emulator.graph.request import (
    DEFAULT_PAGE,
    check_if_match,
    conflict_of,
    fs_times,
    identity_of,
    json_body,
    may_refuse_replace,
    next_link,
    page_size,
)
from sharelift.emulator.graph.wire import (
    GRAPH_CONTEXT,
    ItemRenderer,
    item_context,
    json_response,
    select,
)
from sharelift.emulator.store import DriveError, Item, Stamp, Store, not_found


async def get_item(request: Request, store: Store, address: Address) -> Response:
    item = target(store, address)
    renderer = ItemRenderer(request, store, address.drive)
    body: dict[str, Any] = {"@odata.context": item_context(address.drive), **renderer.render(item)}
    expand = request.query_params.get("$expand") or ""
    if "children" in {e.strip().split("(")[0] for e in expand.split(",")} and item.is_folder:
        children = store.items.children(address.drive.id, item.id, None, DEFAULT_PAGE)
        body["children"] = [renderer.render(c) for c in children]
    return json_response(request, select(body, request))


async def list_children(request: Request, store: Store, address: Address) -> Response:
    folder = target(store, address)
    if not folder.is_folder:
        # A file has no children: Graph answers with an empty collection.
        children: list[Item] = []
        more = False
    else:
        top = page_size(request)
        token = request.query_params.get("$skiptoken")
        after = decode_skiptoken(token) if token else None
        children = store.items.children(address.drive.id, folder.id, after, top + 1)
        more = len(children) > top
        children = children[:top]
    renderer = ItemRenderer(request, store, address.drive)
    body: dict[str, Any] = {
        "@odata.context": (
            f"{GRAPH_CONTEXT}#drives('{address.drive.id}')/items('{folder.id}')/children"
        ),
        "value": [select(renderer.render(c), request) for c in children],
    }
    if more:
        body["@odata.nextLink"] = next_link(
            request, {"$skiptoken": encode_skiptoken(children[-1].name.lower())}
        )
    return json_response(request, body)


def encode_skiptoken(name_lower: str) -> str:
    return base64.urlsafe_b64encode(name_lower.encode()).decode("ascii").rstrip("=")


def decode_skiptoken(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except ValueError:
        raise DriveError(400, "invalidRequest", "Invalid $skiptoken.") from None


async def create_child(request: Request, store: Store, address: Address) -> Response:
    parent = target(store, address)
    body = await json_body(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise DriveError(400, "invalidRequest", "The name property is required.")
    if "folder" not in body:
        raise DriveError(
            400, "invalidRequest", "A folder facet is required to create an item here."
        )
    conflict = conflict_of(request, body, "fail")
    created_at, modified_at = fs_times(body.get("fileSystemInfo"))
    stamp = Stamp(identity_of(request), created_at, modified_at)
    folder, created = store.folders.create(address.drive.id, parent.id, name, conflict, stamp)
    renderer = ItemRenderer(request, store, address.drive)
    out = {
        "@odata.context": (
            f"{GRAPH_CONTEXT}#drives('{address.drive.id}')/items('{parent.id}')/children/$entity"
        ),
        **renderer.render(folder),
    }
    return json_response(request, out, 201 if created else 200)


async def patch_item(request: Request, store: Store, address: Address) -> Response:
    item = target(store, address)
    check_if_match(request, item)
    body = await json_body(request)
    drive_id = address.drive.id
    new_parent: str | None = None
    ref = body.get("parentReference")
    if isinstance(ref, dict):
        if ref.get("driveId") not in (None, drive_id):
            raise DriveError(
                400, "invalidRequest", "Moving items between drives is not supported; copy it."
            )
        if ref.get("id"):
            new_parent = str(ref["id"])
        elif ref.get("path"):
            path = str(ref["path"])
            _, colon, rel = path.partition("root:")
            if not colon:
                raise DriveError(400, "invalidRequest", f"Invalid parentReference path: {path}")
            parent_item = store.items.resolve(drive_id, address.drive.root_id, rel)
            if parent_item is None:
                raise not_found()
            new_parent = parent_item.id
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise DriveError(400, "invalidRequest", "name must be a string.")
    created_at, modified_at = fs_times(body.get("fileSystemInfo"))
    updated = store.edits.update(
        drive_id,
        item.id,
        identity_of(request),
        name=name,
        parent_id=new_parent,
        fs_created=created_at,
        fs_modified=modified_at,
        conflict=conflict_of(request, body, "fail"),
    )
    renderer = ItemRenderer(request, store, address.drive)
    out = {"@odata.context": item_context(address.drive), **renderer.render(updated)}
    return json_response(request, out)


async def delete_item(request: Request, store: Store, address: Address) -> Response:
    item = target(store, address)
    check_if_match(request, item)
    if not item.is_folder:
        may_refuse_replace(request, address.drive, item.name)
    store.items.delete(address.drive.id, item.id)
    return Response(status_code=204)
