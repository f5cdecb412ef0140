"""File versions: list them, read one, download one
(https://learn.microsoft.com/graph/api/driveitem-list-versions), delete an older one.

Graph's v1.0 reference documents no delete, but the `versions` collection of a driveItem takes a
DELETE of one of its members on OneDrive for Business and SharePoint (Microsoft's generated Graph
SDKs expose it; rclone's `cleanup` and `--onedrive-no-versions` use it): 204, 404 for an unknown
version; the current version cannot be deleted."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sharelift.emulator.graph.addressing import Address, target
from sharelift.emulator.graph.wire import GRAPH_CONTEXT, download_url, iso, json_response
from sharelift.emulator.store import Store, Version, not_found


async def list_versions(request: Request, store: Store, address: Address) -> Response:
    item = target(store, address)
    versions = [] if item.is_folder else store.versions.of(item)
    if address.action_arg is not None:
        found = [v for v in versions if v.label == address.action_arg]
        if not found:
            raise not_found()
        version = found[0]
        if address.action_tail == "content":
            return RedirectResponse(
                download_url(store, address.drive, item, version.content_key), 302
            )
        return json_response(request, version_json(version))
    body = {
        "@odata.context": (
            f"{GRAPH_CONTEXT}#drives('{address.drive.id}')/items('{item.id}')/versions"
        ),
        "value": [version_json(v) for v in versions],
    }
    return json_response(request, body)


def version_json(version: Version) -> dict[str, Any]:
    return {
        "id": version.label,
        "lastModifiedDateTime": iso(version.modified),
        "size": version.size,
        "lastModifiedBy": version.modified_by,
    }


async def delete_version(request: Request, store: Store, address: Address) -> Response:
    item = target(store, address)
    label = address.action_arg or ""
    number, dot, minor = label.partition(".")
    if item.is_folder or not number.isdigit() or (dot and minor != "0") or address.action_tail:
        raise not_found()
    store.versions.delete(address.drive.id, item, int(number))
    return Response(status_code=204)
