"""Graph v1.0 routes of the emulator: users, sites, drives, driveItems, uploads, downloads, delta.

`routes(store)` returns every route this half of the emulator serves:

    POST /v1.0/$batch                 JSON batching (batch.py)
    *    /v1.0/{path}                 everything else under Graph, parsed by `parse_address`
    PUT|GET|DELETE|POST /_upload/{s}  upload-session URLs, unauthenticated (uploads.py)
    GET  /_download/{token}           pre-authenticated download URLs
    GET  /_monitor/{token}            status of a copy (unauthenticated, as Graph's monitor URLs)

Authentication happened before a handler runs (the platform's middleware sets
`request.state.principal`); the store is `request.app.state.store`.

Graph addresses items with `:`-delimited paths (`/drives/{d}/root:/a/b:/children`,
https://learn.microsoft.com/onedrive/developer/rest-api/concepts/addressing-driveitems). Names
cannot contain `:`, so after percent-decoding the colons are unambiguous delimiters.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from sharelift.emulator import batch, uploads
from sharelift.emulator.store import (
    SYSTEM_IDENTITY,
    Drive,
    DriveError,
    Identity,
    Item,
    Stamp,
    Store,
    Version,
    name_exists,
    not_found,
    split_path,
)
from sharelift.emulator.wire import (
    GRAPH_CONTEXT,
    ItemRenderer,
    base,
    download_url,
    drive_error,
    drive_json,
    error_response,
    iso,
    json_response,
    parse_iso,
    select,
    site_json,
    user_json,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE = 200
MAX_PAGE = 1000
CONFLICT_PARAM = "@microsoft.graph.conflictBehavior"
LEGACY_CONFLICT = "@name.conflictBehavior"
CONFLICTS = {"fail", "replace", "rename"}


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def identity_of(request: Request) -> Identity:
    """createdBy / lastModifiedBy for the caller: the user (delegated) or the application."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        return SYSTEM_IDENTITY
    if principal.kind == "user" and principal.upn:
        user = store_of(request).tenant.user(principal.upn)
        return {
            "user": {
                "email": principal.upn,
                "id": user.id if user else None,
                "displayName": user.display_name if user else principal.display_name,
            }
        }
    return {"application": {"id": principal.app_id, "displayName": principal.display_name}}


ENTERPRISE_E3_SKU = "6fd2c87f-b296-42f0-b197-1e91e994b900"  # Office 365 E3, as Graph lists it


def bad_segment(segment: str) -> DriveError:
    return DriveError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def user_not_found(upn: str) -> DriveError:
    return DriveError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{upn}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


# ---------------------------------------------------------------------------------------------
# Addressing


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


def _take_segment(rest: str) -> tuple[str, str]:
    """ "a/b" -> ("a", "/b"); stops at '/' or ':'."""
    m = re.match(r"([^/:]*)(.*)", rest, re.S)
    assert m is not None
    return m.group(1), m.group(2)


def _colon_path(rest: str) -> tuple[str, str]:
    """ ":/a/b:/children" -> ("/a/b", "/children"); ":/a/b" -> ("/a/b", "")."""
    assert rest.startswith(":")
    body = rest[1:]
    end = body.find(":")
    if end < 0:
        return body, ""
    return body[:end], body[end + 1 :]


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


def parse_item_address(drive: Drive, rest: str) -> Address:
    """`rest` follows the drive: "", "/root…", "/items/{id}…"."""
    if rest in ("", "/"):
        return Address(drive)
    if rest.startswith("/root"):
        base_id, tail = drive.root_id, rest[len("/root") :]
    elif rest.startswith("/items/"):
        item_id, tail = _take_segment(rest[len("/items/") :])
        base_id = drive.root_id if item_id == "root" else item_id
    else:
        raise bad_segment(_take_segment(rest.lstrip("/"))[0])
    address = Address(drive, base_id)
    if tail.startswith(":"):
        address.rel_path, tail = _colon_path(tail)
    parts = [p for p in tail.split("/") if p]
    if parts:
        address.action = parts[0]
        if len(parts) > 1:
            address.action_arg = parts[1]
            address.action_tail = "/".join(parts[2:])
    return address


# ---------------------------------------------------------------------------------------------
# Entry point for /v1.0/{path}


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
    store = store_of(request)
    head, rest = _take_segment(path.lstrip("/"))
    if head == "drive":
        # `/drive` is Graph's shorthand for `/me/drive`.
        head, rest = "me", "/drive" + rest
    if head == "me":
        principal = getattr(request.state, "principal", None)
        if principal is None or principal.kind != "user" or not principal.upn:
            raise DriveError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        return await user_routes(request, principal.upn, rest)
    if head == "users":
        if rest in ("", "/"):
            return list_users(request, store)
        upn, rest = _take_segment(rest[1:])
        return await user_routes(request, upn, rest)
    if head == "sites":
        return await site_routes(request, store, rest)
    if head == "drives" and rest.startswith("/"):
        drive_id, rest = _take_segment(rest[1:])
        drive = store.tenant.drive(drive_id)
        if drive is None:
            raise DriveError(404, "itemNotFound", "The drive could not be found.")
        return await drive_routes(request, drive, rest)
    raise bad_segment(head)


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


async def user_routes(request: Request, upn: str, rest: str) -> Response:
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
        return await drive_routes(request, drive_for_user(store, upn), rest[len("/drive") :])
    raise bad_segment(_take_segment(rest.lstrip("/"))[0])


async def site_routes(request: Request, store: Store, rest: str) -> Response:
    if not rest.startswith("/"):
        raise bad_segment("sites")
    key, rest = _take_segment(rest[1:])
    if key == "root":
        site = store.tenant.site_by_path(store.tenant.hostname, "/")
    elif rest.startswith(":"):
        site_path, rest = _colon_path(rest)
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
        drive_id, rest = _take_segment(rest[len("/drives/") :])
        found = [d for d in drives if d.id == drive_id]
        if not found:
            raise DriveError(404, "itemNotFound", "The drive could not be found.")
        return await drive_routes(request, found[0], rest)
    if rest == "/drive" or rest.startswith(("/drive/", "/drive:")):
        return await drive_routes(request, drives[0], rest[len("/drive") :])
    raise bad_segment(_take_segment(rest.lstrip("/"))[0])


def drives_list(request: Request, store: Store, drives: list[Drive]) -> Response:
    body = {
        "@odata.context": f"{GRAPH_CONTEXT}#drives",
        "value": [select(drive_json(store, d), request) for d in drives],
    }
    return json_response(request, body)


def only_get(request: Request) -> None:
    if request.method != "GET":
        raise DriveError(405, "methodNotAllowed", f"{request.method} is not supported here.")


# ---------------------------------------------------------------------------------------------
# Drives and items


async def drive_routes(request: Request, drive: Drive, rest: str) -> Response:
    store = store_of(request)
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


def item_context(drive: Drive) -> str:
    return f"{GRAPH_CONTEXT}#drives('{drive.id}')/items/$entity"


def page_size(request: Request, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE) -> int:
    raw = request.query_params.get("$top") or request.query_params.get("top")
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError:
        raise DriveError(400, "invalidRequest", f"Invalid $top value: {raw}") from None
    if top < 1:
        raise DriveError(400, "invalidRequest", f"Invalid $top value: {raw}")
    return min(top, maximum)


def next_link(request: Request, replace: dict[str, str]) -> str:
    """The absolute URL of this request with some query parameters replaced."""
    params = {k: v for k, v in request.query_params.items() if k not in replace}
    params.update(replace)
    path = quote(request.url.path, safe="/:,!$'()*+;=@")
    return f"{base(request).rstrip('/')}{path}?{urlencode(params, safe='$:,')}"


def conflict_of(request: Request, body: dict[str, Any] | None, default: str) -> str:
    """conflictBehavior from the query or the body. Both the Graph annotation and the older
    OneDrive one (`@name.conflictBehavior`, which rclone still sends) are accepted."""
    value = request.query_params.get(CONFLICT_PARAM) or request.query_params.get(LEGACY_CONFLICT)
    if body is not None:
        for key in (CONFLICT_PARAM, LEGACY_CONFLICT):
            if body.get(key):
                value = body[key]
    if not value:
        return default
    if value not in CONFLICTS:
        raise DriveError(400, "invalidRequest", f"Invalid conflictBehavior: {value}")
    return str(value)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise DriveError(400, "invalidRequest", "Invalid request body: not JSON.") from None
    if not isinstance(body, dict):
        raise DriveError(400, "invalidRequest", "Invalid request body: a JSON object expected.")
    return body


def fs_times(info: object) -> tuple[float | None, float | None]:
    if info is None:
        return None, None
    if not isinstance(info, dict):
        raise DriveError(400, "invalidRequest", "fileSystemInfo must be an object.")
    created = info.get("createdDateTime")
    modified = info.get("lastModifiedDateTime")
    return (
        None if created is None else parse_iso(created),
        None if modified is None else parse_iso(modified),
    )


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


def check_if_match(request: Request, item: Item) -> None:
    """If-Match with an eTag (or cTag) the item no longer has: 412 preconditionFailed."""
    if_match = request.headers.get("if-match")
    if not if_match or if_match.strip() == "*":
        return
    current = {f'"{{{item.guid}}},{item.etag_n}"', f'"c:{{{item.guid}}},{item.ctag_n}"'}
    # Graph's eTags contain a comma ("{GUID},3"), so the list is split on the quotes.
    if not set(re.findall(r'"[^"]*"', if_match)) & current:
        raise DriveError(412, "preconditionFailed", "The resource has changed since it was read.")


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
    store.items.delete(address.drive.id, item.id)
    return Response(status_code=204)


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


async def get_content(request: Request, store: Store, address: Address) -> Response:
    item = target(store, address)
    if item.is_folder or item.content_key is None:
        raise DriveError(404, "itemNotFound", "The item has no content (it is a folder).")
    # Graph answers 302 to a pre-authenticated URL that needs no Authorization header.
    url = download_url(request, store, address.drive.id, item.id, item.content_key)
    return RedirectResponse(url, status_code=302)


async def put_content(request: Request, store: Store, address: Address) -> Response:
    """Simple upload (https://learn.microsoft.com/graph/api/driveitem-put-content): new file by
    path (201) or new content for an existing file (200)."""
    by = identity_of(request)
    limit = request.app.state.settings.simple_upload_limit
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise uploads.too_large(limit)
    conflict = conflict_of(request, None, "replace")
    if address.rel_path is None:
        existing: Item | None = target(store, address)
        parent = None
        name = ""
    else:
        parent, name, existing = parent_and_name(store, address, by)
    content = await uploads.stage_body(request, store, limit)
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
    renderer = ItemRenderer(request, store, address.drive)
    out = {"@odata.context": item_context(address.drive), **renderer.render(item)}
    return json_response(request, out, 201 if created else 200)


async def create_upload_session(request: Request, store: Store, address: Address) -> Response:
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
        "uploadUrl": uploads.upload_url(request, session.id),
        "expirationDateTime": iso(session.expires),
        "nextExpectedRanges": ["0-"],
    }
    return json_response(request, out)


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
                download_url(request, store, address.drive.id, item.id, version.content_key), 302
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


Handler = Callable[[Request, Store, Address], Awaitable[Response]]

ACTIONS: dict[tuple[str, str], Handler] = {
    ("GET", ""): get_item,
    ("PATCH", ""): patch_item,
    ("DELETE", ""): delete_item,
    ("GET", "children"): list_children,
    ("POST", "children"): create_child,
    ("GET", "content"): get_content,
    ("POST", "copy"): copy_item,
    ("PUT", "content"): put_content,
    ("POST", "createUploadSession"): create_upload_session,
    ("GET", "versions"): list_versions,
    ("GET", "delta"): delta,
}


# ---------------------------------------------------------------------------------------------
# Pre-authenticated download URLs


async def download_endpoint(request: Request) -> Response:
    store = store_of(request)
    payload = store.signer.unsign(request.path_params["token"])
    parts = payload.split("|") if payload else []
    if len(parts) != 4 or not parts[3].isdigit():
        return error_response(request, 401, "unauthenticated", "Invalid download token.")
    drive_id, item_id, key, expires = parts
    if int(expires) < time.time():
        return error_response(request, 401, "unauthenticated", "The download URL has expired.")
    item = store.items.get(drive_id, item_id)
    path = store.files.content_path(key)
    if item is None or not path.exists():
        return error_response(request, 404, "itemNotFound", "The resource could not be found.")
    size = path.stat().st_size
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(item.name)}",
        "ETag": f'"{{{item.guid}}},{item.etag_n}"',
    }
    start, end = 0, size - 1
    status = 200
    range_header = request.headers.get("range")
    # One range is served; a header we do not understand (several ranges) is ignored and the
    # whole body sent, as RFC 9110 §14.2 allows.
    if range_header and re.fullmatch(r"\s*bytes\s*=\s*\d*\s*-\s*\d*\s*", range_header):
        parsed = parse_range(range_header, size)
        if parsed is None:
            return Response(
                status_code=416, headers={"Content-Range": f"bytes */{size}", **headers}
            )
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(max(end - start + 1, 0))
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=item.mime)

    async def body() -> AsyncIterator[bytes]:
        # Plain reads of 1 MiB from local disk are cheaper than a worker thread per read.
        with open(path, "rb") as f:  # noqa: ASYNC230
            f.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                chunk = f.read(min(remaining, 1024 * 1024))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    return StreamingResponse(body(), status_code=status, headers=headers, media_type=item.mime)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b` / `bytes=a-` / `bytes=-n` range -> (start, end) inclusive, or None when
    it cannot be satisfied (RFC 9110 §14.1.2)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if m is None or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        suffix = int(m.group(2))
        if suffix == 0 or size == 0:
            return None
        return max(size - suffix, 0), size - 1
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def routes(store: Store) -> list[BaseRoute]:
    """Every route of the Graph drive half. `store` is the one on `app.state.store`."""
    del store  # handlers read request.app.state.store, so a restarted store is picked up
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/v1.0/$batch", batch.batch_endpoint, methods=["POST"]),
        Route("/v1.0/{path:path}", graph_endpoint, methods=methods),
        Route(
            "/_upload/{session}", uploads.upload_endpoint, methods=["PUT", "GET", "DELETE", "POST"]
        ),
        Route("/_download/{token}", download_endpoint, methods=["GET", "HEAD"]),
        Route("/_monitor/{token}", monitor_endpoint, methods=["GET"]),
    ]
