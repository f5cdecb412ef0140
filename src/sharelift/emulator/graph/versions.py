"""File versions: list them, read one, download one
(https://learn.microsoft.com/graph/api/driveitem-list-versions)."""

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
