"""Graph's JSON shapes for the emulator: driveItem, drive, site, user, errors, timestamps.

Shapes follow what Graph v1.0 sends for OneDrive for Business and SharePoint
(https://learn.microsoft.com/graph/api/resources/driveitem): files carry `cTag` and
`file.hashes.quickXorHash` only (no sha1/sha256), folders carry `folder.childCount` and no cTag,
the root carries `root: {}` and is named "root".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse

from sharelift.emulator.store import Drive, DriveError, Item, Site, Store, User, list_id_of

DOWNLOAD_URL_LIFETIME_S = 3600
"""Graph's pre-authenticated download URLs last about an hour."""

GRAPH_CONTEXT = "https://graph.microsoft.com/v1.0/$metadata"


def iso(ts: float) -> str:
    """UTC timestamp as Graph writes it: `2024-05-01T10:20:30Z` (ODB keeps whole seconds)."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: object) -> float:
    """An ISO 8601 timestamp from a client (any fraction length, `Z` or an offset) -> epoch.

    Raises DriveError(400) when it is not one."""
    if not isinstance(value, str):
        raise DriveError(400, "invalidRequest", "Invalid date/time value.")
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DriveError(400, "invalidRequest", f"Invalid date/time value: {value}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def base(request: Request) -> str:
    """The request's own scheme and host, ending in '/': every URL we hand out starts here,
    so the links work behind a proxy that forwards `Host: graph.microsoft.com`."""
    return str(request.base_url)


def request_ids(request: Request) -> tuple[str, str]:
    """(request-id, client-request-id) for this request: the platform's id when it set one."""
    rid = getattr(request.state, "request_id", None) or request.headers.get("request-id")
    if not rid:
        rid = str(uuid.uuid4())
        request.state.request_id = rid
    return str(rid), request.headers.get("client-request-id", str(rid))


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    inner_code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Graph's error body: {"error": {"code", "message", "innerError": {...}}}."""
    rid, crid = request_ids(request)
    inner: dict[str, Any] = {}
    if inner_code:
        inner["code"] = inner_code
    inner.update(
        {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": rid,
            "client-request-id": crid,
        }
    )
    all_headers = {"request-id": rid, "client-request-id": crid, **(headers or {})}
    return JSONResponse(
        {"error": {"code": code, "message": message, "innerError": inner}},
        status_code=status,
        headers=all_headers,
    )


def drive_error(request: Request, exc: DriveError) -> JSONResponse:
    return error_response(request, exc.status, exc.code, exc.message, exc.inner_code)


def json_response(request: Request, body: Mapping[str, Any], status: int = 200) -> JSONResponse:
    rid, crid = request_ids(request)
    return JSONResponse(
        dict(body),
        status_code=status,
        headers={"request-id": rid, "client-request-id": crid},
        media_type="application/json; odata.metadata=minimal; charset=utf-8",
    )


def item_context(drive: Drive) -> str:
    """The `@odata.context` of one driveItem of `drive`."""
    return f"{GRAPH_CONTEXT}#drives('{drive.id}')/items/$entity"


def select(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """Honour `$select` on one resource: keep the chosen properties and the `@odata` ones."""
    wanted = request.query_params.get("$select") or request.query_params.get("select")
    if not wanted:
        return body
    keep = {w.strip() for w in wanted.split(",") if w.strip()}
    return {k: v for k, v in body.items() if k in keep or k.startswith("@odata")}


# ---------------------------------------------------------------------------------------------


def selected(request: Request, name: str) -> bool:
    """Whether `$select` names `name` (properties Graph returns only when asked for)."""
    wanted = request.query_params.get("$select") or request.query_params.get("select") or ""
    return name in {w.strip() for w in wanted.split(",")}


def sharepoint_ids(store: Store, drive: Drive, item: Item | None = None) -> dict[str, Any]:
    """The `sharepointIds` facet (https://learn.microsoft.com/graph/api/resources/sharepointids)
    of a drive's list, or of one of its items: what a Migration API package must name."""
    _, site_guid, web_guid = drive.site_id.split(",")
    site = store.tenant.site(drive.site_id)
    ids: dict[str, Any] = {
        "listId": list_id_of(drive.id),
        "siteId": site_guid,
        "siteUrl": site.web_url if site else "",
        "tenantId": None,
        "webId": web_guid,
    }
    if item is not None:
        ids["listItemUniqueId"] = item.guid.lower()
    return ids


def list_json(store: Store, drive: Drive) -> dict[str, Any]:
    """The document library behind a drive, as `GET /drives/{id}/list` answers it."""
    return {
        "createdDateTime": iso(drive.created),
        "displayName": drive.name,
        "id": list_id_of(drive.id),
        "lastModifiedDateTime": iso(drive.created),
        "name": drive.web_url.rsplit("/", 1)[-1],
        "webUrl": drive.web_url,
        "list": {"contentTypesEnabled": False, "hidden": False, "template": "documentLibrary"},
        "sharepointIds": sharepoint_ids(store, drive),
    }


def quota(drive: Drive) -> dict[str, Any]:
    """The quota facet (https://learn.microsoft.com/graph/api/resources/quota): nearing when
    less than 10% remains, critical under 1%, exceeded when used passes total."""
    remaining = max(drive.quota_total - drive.used, 0)
    ratio = drive.used / drive.quota_total if drive.quota_total else 1.0
    state = (
        "exceeded"
        if ratio > 1
        else "critical"
        if ratio > 0.99
        else "nearing"
        if ratio > 0.9
        else "normal"
    )
    return {
        "deleted": drive.deleted,
        "remaining": remaining,
        "state": state,
        "total": drive.quota_total,
        "used": drive.used,
    }


def drive_json(store: Store, drive: Drive) -> dict[str, Any]:
    if drive.owner_upn:
        user = store.tenant.user(drive.owner_upn)
        owner: dict[str, Any] = {
            "user": {
                "email": drive.owner_upn,
                "id": user.id if user else None,
                "displayName": user.display_name if user else drive.owner_upn,
            }
        }
    else:
        site = store.tenant.site(drive.site_id)
        owner = {"group": {"displayName": site.display_name if site else ""}}
    return {
        "createdDateTime": iso(drive.created),
        "description": "",
        "id": drive.id,
        "lastModifiedDateTime": iso(drive.created),
        "name": drive.name,
        "webUrl": drive.web_url,
        "driveType": drive.drive_type,
        "createdBy": {"user": {"displayName": "System Account"}},
        "owner": owner,
        "quota": quota(drive),
    }


def site_json(site: Site) -> dict[str, Any]:
    body: dict[str, Any] = {
        "createdDateTime": iso(site.created),
        "description": "",
        "id": site.id,
        "lastModifiedDateTime": iso(site.created),
        "name": site.name,
        "webUrl": site.web_url,
        "displayName": site.display_name,
        "siteCollection": {"hostname": site.hostname},
    }
    if site.path == "/":
        body["root"] = {}
    return body


def user_json(user: User) -> dict[str, Any]:
    given, _, surname = user.display_name.partition(" ")
    return {
        "businessPhones": [],
        "displayName": user.display_name,
        "givenName": given,
        "jobTitle": None,
        "mail": user.upn,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "surname": surname or None,
        "userPrincipalName": user.upn,
        "id": user.id,
    }


def sharepoint_base(store: Store, drive: Drive) -> str:
    """`https://{host}{site path}` of the drive's site, with no port: where SharePoint puts the
    drive's pre-authenticated URLs (upload sessions, downloads), whichever host the request
    that asked for them came to. A client reaches it through emulator.json's `connect` map."""
    site = store.tenant.site(drive.site_id)
    if site is None:
        raise DriveError(404, "itemNotFound", "The site of the drive could not be found.")
    path = "" if site.path == "/" else quote(site.path)
    return f"https://{site.hostname}{path}"


def download_url(store: Store, drive: Drive, item: Item, key: str, site_base: str = "") -> str:
    """A pre-authenticated download URL of one version's bytes, on the drive's SharePoint host
    (`{site}/_layouts/15/download.aspx?UniqueId=…&tempauth=…`, as Graph hands them out), good
    for an hour. `site_base`: the drive's `sharepoint_base`, when the caller has it."""
    expires = int(time.time()) + DOWNLOAD_URL_LIFETIME_S
    token = store.signer.sign(f"{drive.id}|{item.id}|{key}|{expires}")
    return (
        f"{site_base or sharepoint_base(store, drive)}/_layouts/15/download.aspx"
        f"?UniqueId={item.guid.lower()}&Translate=false&tempauth={token}&ApiVersion=2.0"
    )


class ItemRenderer:
    """Turns Items into driveItem JSON for one request, caching folder paths on the way."""

    def __init__(self, request: Request, store: Store, drive: Drive) -> None:
        self.request = request
        self.store = store
        self.drive = drive
        self._paths: dict[str, str] = {}
        self._site_base = ""

    def path_of(self, item: Item) -> str:
        """ "" for the root, "/a/b" for others."""
        cached = self._paths.get(item.id)
        if cached is None:
            cached = self.store.items.path_of(item)
            self._paths[item.id] = cached
        return cached

    def _parent_path(self, item: Item) -> str | None:
        if item.parent_id is None:
            return None
        cached = self._paths.get(item.parent_id)
        if cached is not None:
            return cached
        parent = self.store.items.get(self.drive.id, item.parent_id)
        return None if parent is None else self.path_of(parent)

    def render(self, item: Item) -> dict[str, Any]:
        if item.deleted:
            return self.tombstone(item)
        drive = self.drive
        body: dict[str, Any] = {}
        if not item.is_folder and item.content_key:
            if not self._site_base:
                self._site_base = sharepoint_base(self.store, drive)
            body["@microsoft.graph.downloadUrl"] = download_url(
                self.store, drive, item, item.content_key, self._site_base
            )
        body.update(
            {
                "createdBy": item.created_by,
                "createdDateTime": iso(item.created),
                "eTag": f'"{{{item.guid}}},{item.etag_n}"',
                "id": item.id,
                "lastModifiedBy": item.modified_by,
                "lastModifiedDateTime": iso(item.modified),
                "name": item.name,
            }
        )
        parent_ref: dict[str, Any] = {"driveType": drive.drive_type, "driveId": drive.id}
        parent_path = self._parent_path(item)
        if item.parent_id is not None:
            parent_ref["id"] = item.parent_id
            parent_ref["path"] = f"/drives/{drive.id}/root:{parent_path or ''}"
            own_path = f"{parent_path or ''}/{item.name}"
            if item.is_folder:
                self._paths[item.id] = own_path
        else:
            own_path = ""
        body["parentReference"] = parent_ref
        body["webUrl"] = drive.web_url + quote(own_path)
        if not item.is_folder:
            body["cTag"] = f'"c:{{{item.guid}}},{item.ctag_n}"'
        body["fileSystemInfo"] = {
            "createdDateTime": iso(item.fs_created),
            "lastModifiedDateTime": iso(item.fs_modified),
        }
        if item.is_folder:
            body["folder"] = {"childCount": item.child_count}
        else:
            body["file"] = {"mimeType": item.mime, "hashes": {"quickXorHash": item.qxh}}
        if item.is_root:
            body["root"] = {}
        body["size"] = item.size
        if selected(self.request, "sharepointIds"):
            body["sharepointIds"] = sharepoint_ids(self.store, drive, item)
        return body

    def tombstone(self, item: Item) -> dict[str, Any]:
        """A deleted item as delta reports it: id, name, parent, and the `deleted` facet."""
        body: dict[str, Any] = {
            "id": item.id,
            "name": item.name,
            "lastModifiedDateTime": iso(item.modified),
            "parentReference": {
                "driveType": self.drive.drive_type,
                "driveId": self.drive.id,
                "id": item.parent_id,
            },
            "deleted": {"state": "deleted"},
        }
        body["folder" if item.is_folder else "file"] = {}
        return body
