"""Delta: the changes of a drive since a token, paged, in change order.

Tokens are signed `delta|{drive}|{epoch}|{position}` strings (see `store.changes`): a token of
another drive, of an older epoch, or from the future answers 410 resyncRequired.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from sharelift.emulator.graph.addressing import Address, target
from sharelift.emulator.graph.request import page_size
from sharelift.emulator.graph.wire import GRAPH_CONTEXT, ItemRenderer, base, json_response, select
from sharelift.emulator.store import Drive, DriveError, Store


async def delta(request: Request, store: Store, address: Address) -> Response:
    """Track changes (https://learn.microsoft.com/graph/api/driveitem-delta). OneDrive for
    Business and SharePoint support delta only on the root folder."""
    drive = address.drive
    folder = target(store, address)
    if not folder.is_root:
        raise DriveError(400, "invalidRequest", "Delta is only supported on the root of a drive.")
    token = request.query_params.get("$skiptoken") or request.query_params.get("token")
    # token=latest: "an empty response with the deltaLink of the current state" (same page).
    if token == "latest":  # noqa: S105 — Graph's documented token value, not a secret
        after = store.changes.current_seq()
        body = {
            "@odata.context": f"{GRAPH_CONTEXT}#Collection(driveItem)",
            "value": [],
            "@odata.deltaLink": delta_link(request, store, drive, after, "token"),
        }
        return json_response(request, body)
    after = 0 if token is None else delta_position(store, drive, token)
    top = page_size(request)
    changes = store.changes.since(drive.id, after, top + 1)
    more = len(changes) > top
    changes = changes[:top]
    renderer = ItemRenderer(request, store, drive)
    out: dict[str, Any] = {
        "@odata.context": f"{GRAPH_CONTEXT}#Collection(driveItem)",
        "value": [select(renderer.render(c), request) for c in changes],
    }
    last = changes[-1].seq if changes else after
    if more:
        out["@odata.nextLink"] = delta_link(request, store, drive, last, "$skiptoken")
    else:
        out["@odata.deltaLink"] = delta_link(request, store, drive, max(last, after), "token")
    return json_response(request, out)


def delta_link(request: Request, store: Store, drive: Drive, seq: int, param: str) -> str:
    """The next page's or the next round's link; it keeps the caller's $top and $select."""
    params = {param: store.signer.sign(f"delta|{drive.id}|{store.changes.epoch(drive.id)}|{seq}")}
    params.update((k, v) for k, v in request.query_params.items() if k in ("$top", "$select"))
    return f"{base(request)}v1.0/drives/{drive.id}/root/delta?{urlencode(params, safe='$,')}"


def delta_position(store: Store, drive: Drive, token: str) -> int:
    payload = store.signer.unsign(token)
    parts = payload.split("|") if payload else []
    valid = (
        len(parts) == 4
        and parts[0] == "delta"
        and parts[1] == drive.id
        and parts[2] == str(store.changes.epoch(drive.id))
        and parts[3].isdigit()
        and int(parts[3]) <= store.changes.current_seq()
    )
    if not valid:
        raise DriveError(
            410,
            "resyncRequired",
            "Resync required. Replace any local items with the server's version (including "
            "deletes) if you're sure that the service was up to date with your local changes "
            "when you last sync'd. Upload any local changes that the server doesn't know about.",
            inner_code="resyncChangesApplyDifferences",
        )
    return int(parts[3])
