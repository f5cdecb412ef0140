"""Copying items, and the monitor URL that reports a copy's progress."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sharelift.emulator.graph.addressing import Address, target
from sharelift.emulator.graph.request import conflict_of, identity_of, json_body, store_of
from sharelift.emulator.graph.wire import GRAPH_CONTEXT, base, error_response, json_response
from sharelift.emulator.store import DriveError, Store


async def copy_item(request: Request, store: Store, address: Address) -> Response:
    """Copy (https://learn.microsoft.com/graph/api/driveitem-copy): Graph answers 202 with a
    monitor URL in Location that needs no token and reports the operation's status. Here the
    copy is done before answering, so the monitor always says "completed"."""
    item = target(store, address)
    body = await json_body(request)
    drive = address.drive
    ref = body.get("parentReference") or {}
    if not isinstance(ref, dict):
        raise DriveError(400, "invalidRequest", "parentReference must be an object.")
    if ref.get("driveId") not in (None, drive.id):
        raise DriveError(400, "invalidRequest", "Copying between drives is not supported here.")
    parent_id = str(ref["id"]) if ref.get("id") else item.parent_id
    assert parent_id is not None or item.is_root
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise DriveError(400, "invalidRequest", "name must be a string.")
    copied = store.edits.copy(
        drive.id,
        item.id,
        parent_id or drive.root_id,
        name,
        conflict_of(request, body, "fail"),
        identity_of(request),
    )
    token = store.signer.sign(f"monitor|{drive.id}|{copied.id}")
    return Response(status_code=202, headers={"Location": f"{base(request)}_monitor/{token}"})


async def monitor_endpoint(request: Request) -> Response:
    """The status of a copy, on an unauthenticated URL (asyncJobStatus)."""
    store = store_of(request)
    payload = store.signer.unsign(request.path_params["token"])
    parts = payload.split("|") if payload else []
    if len(parts) != 3 or parts[0] != "monitor":
        return error_response(request, 404, "itemNotFound", "No such operation.")
    body = {
        "@odata.context": f"{GRAPH_CONTEXT}#microsoft.graph.asyncJobStatus",
        "operation": "ItemCopy",
        "percentageComplete": 100.0,
        "resourceId": parts[2],
        "status": "completed",
    }
    return json_response(request, body)
