"""Users, sites and drives: the directory a client walks to find a drive.

`user_routes` and `site_routes` answer requests for the user or site itself, and hand a
request below a drive back to the router as a `DriveHop` (the drive and the rest of the path).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sharelift.emulator.graph.addressing import bad_segment, colon_path, take_segment
from sharelift.emulator.graph.request import next_link, only_get, page_size, store_of
from sharelift.emulator.graph.wire import (
    GRAPH_CONTEXT,
    drive_json,
    json_response,
    select,
    site_json,
    user_json,
)
from sharelift.emulator.store import Drive, DriveError, Store

ENTERPRISE_E3_SKU = "6fd2c87f-b296-42f0-b197-1e91e994b900"  # Office 365 E3, as Graph lists it

DriveHop = tuple[Drive, str]
"""A drive and the rest of the path below it (`/root:/a:/children`), for the router."""


def user_not_found(upn: str) -> DriveError:
    return DriveError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{upn}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def drive_for_user(store: Store, upn: str) -> Drive:
    user = store.tenant.user(upn)
    if user is None:
        raise user_not_found(upn)
    if user.drive_id is None:
        # What Graph answers for a user whose personal site does not exist (yet).
        raise DriveError(404, "ResourceNotFound", "User's mysite not found.")
    drive = store.tenant.drive(user.drive_id)
    assert drive is not None
    return drive


def list_users(request: Request, store: Store) -> Response:
    users = store.tenant.users()
    top = page_size(request, 100, 999)
    skiptoken = request.query_params.get("$skiptoken", "0")
    if not skiptoken.isdigit():
        raise DriveError(400, "invalidRequest", "Invalid $skiptoken.")
    start = int(skiptoken)
    page = users[start : start + top]
    body: dict[str, Any] = {
        "@odata.context": f"{GRAPH_CONTEXT}#users",
        "value": [user_json(u) for u in page],
    }
    if start + top < len(users):
        body["@odata.nextLink"] = next_link(request, {"$skiptoken": str(start + top)})
    return json_response(request, body)


def user_routes(request: Request, upn: str, rest: str) -> Response | DriveHop:
    """`/users/{upn}…` (and `/me…`): the user, their drives, or a hop into their drive."""
    store = store_of(request)
    user = store.tenant.user(upn)
    if user is None:
        raise user_not_found(upn)
    if rest in ("", "/"):
        only_get(request)
        body = {"@odata.context": f"{GRAPH_CONTEXT}#users/$entity", **user_json(user)}
        # Graph returns assignedLicenses only when $select names it
        # (https://learn.microsoft.com/graph/api/resources/user#properties).
        if "assignedlicenses" in (request.query_params.get("$select") or "").lower():
            body["assignedLicenses"] = (
                [{"disabledPlans": [], "skuId": ENTERPRISE_E3_SKU}] if user.licensed else []
            )
        return json_response(request, select(body, request))
    if rest == "/drives":
        only_get(request)
        drives = [] if user.drive_id is None else [drive_for_user(store, upn)]
        return drives_list(request, store, drives)
    if rest == "/drive" or rest.startswith(("/drive/", "/drive:")):
        return drive_for_user(store, upn), rest[len("/drive") :]
    raise bad_segment(take_segment(rest.lstrip("/"))[0])


def site_routes(request: Request, store: Store, rest: str) -> Response | DriveHop:
    """`/sites/{key}…`: the site, its drives, or a hop into one of them."""
    if not rest.startswith("/"):
        raise bad_segment("sites")
    key, rest = take_segment(rest[1:])
    if key == "root":
        site = store.tenant.site_by_path(store.tenant.hostname, "/")
    elif rest.startswith(":"):
        site_path, rest = colon_path(rest)
        site = store.tenant.site_by_path(key, site_path)
    elif "," not in key and "." in key:
        site = store.tenant.site_by_path(key, "/")  # /sites/{hostname}: that host's root site
    else:
        site = store.tenant.site(key)
    if site is None:
        raise DriveError(404, "itemNotFound", "Requested site could not be found")
    if rest in ("", "/"):
        only_get(request)
        body = {"@odata.context": f"{GRAPH_CONTEXT}#sites/$entity", **site_json(site)}
        return json_response(request, select(body, request))
    drives = store.tenant.drives(site.id)
    if rest == "/drives":
        only_get(request)
        return drives_list(request, store, drives)
    if rest.startswith("/drives/"):
        drive_id, rest = take_segment(rest[len("/drives/") :])
        found = [d for d in drives if d.id == drive_id]
        if not found:
            raise DriveError(404, "itemNotFound", "The drive could not be found.")
        return found[0], rest
    if rest == "/drive" or rest.startswith(("/drive/", "/drive:")):
        return drives[0], rest[len("/drive") :]
    raise bad_segment(take_segment(rest.lstrip("/"))[0])


def drives_list(request: Request, store: Store, drives: list[Drive]) -> Response:
    body = {
        "@odata.context": f"{GRAPH_CONTEXT}#drives",
        "value": [select(drive_json(store, d), request) for d in drives],
    }
    return json_response(request, body)
