"""What every Graph handler reads from its request: the store, the caller, paging, the
conflict behaviour, the JSON body, fileSystemInfo times, If-Match."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request

from sharelift.emulator.faults.replace_refusal import refuse_replace
from sharelift.emulator.graph.wire import base, parse_iso
from sharelift.emulator.observe import RECORD_KEY, RequestRecord
from sharelift.emulator.settings import EmulatorSettings
from sharelift.emulator.store import SYSTEM_IDENTITY, Drive, DriveError, Identity, Item, Store

DEFAULT_PAGE = 200
MAX_PAGE = 1000
CONFLICT_PARAM = "@microsoft.graph.conflictBehavior"
LEGACY_CONFLICT = "@name.conflictBehavior"
CONFLICTS = {"fail", "replace", "rename"}


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def on_site_of(request: Request, store: Store, drive: Drive) -> bool:
    """Whether the request came to the drive's SharePoint host, under its site's path: where
    the drive's pre-authenticated URLs are valid."""
    site = store.tenant.site(drive.site_id)
    if site is None or (request.url.hostname or "").lower() != site.hostname.lower():
        return False
    prefix = "" if site.path == "/" else site.path.lower()
    return request.url.path.lower().startswith(prefix + "/_")


def may_refuse_replace(request: Request, drive: Drive, name: str) -> None:
    """Before replacing or deleting `name`: SharePoint's 404 itemNotFound at the configured
    rate (`faults.replace_refusal`), noted in the request log as fault "replace_refused"."""
    settings: EmulatorSettings = request.app.state.settings
    try:
        refuse_replace(settings.faults, drive, name)
    except DriveError:
        record: RequestRecord | None = request.scope.get(RECORD_KEY)
        if record is not None:
            record.fault = "replace_refused"
        raise


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


def only_get(request: Request) -> None:
    if request.method != "GET":
        raise DriveError(405, "methodNotAllowed", f"{request.method} is not supported here.")


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


def check_if_match(request: Request, item: Item) -> None:
    """If-Match with an eTag (or cTag) the item no longer has: 412 preconditionFailed."""
    if_match = request.headers.get("if-match")
    if not if_match or if_match.strip() == "*":
        return
    current = {f'"{{{item.guid}}},{item.etag_n}"', f'"c:{{{item.guid}}},{item.ctag_n}"'}
    # Graph's eTags contain a comma ("{GUID},3"), so the list is split on the quotes.
    if not set(re.findall(r'"[^"]*"', if_match)) & current:
        raise DriveError(412, "preconditionFailed", "The resource has changed since it was read.")
