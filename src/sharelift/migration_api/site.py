"""The target as a package must name it: the real web, list and folder ids, read through Graph.

A package names the target web and list by their ids and every file's folder by its id
(sp-dev-docs `docs/apis/migration-manifest.md`, "ID consistency": "Reference the target Web
and List identifiers explicitly"). Graph gives them: a driveItem's `sharepointIds` (asked for
with `$select`) carries `siteUrl`, `webId`, `listId` and `listItemUniqueId`, which for a folder
of a library is the folder's own id; the drive's `webUrl` is the library's URL.

`rest_endpoint` says where a site's `_api/site/...` calls go and which audience their token
needs: the site's own host, or the emulator's root for a tenant in the emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from sharelift.clouds import Cloud
from sharelift.graph.drive import DriveClient
from sharelift.migration_api.jobs import MigrationApiError
from sharelift.migration_api.package import PackageTarget


@dataclass(frozen=True)
class RestEndpoint:
    """Where a site's REST calls go: `origin` (scheme and host, the client's base URL), the
    site's path below it, and the scope of the token they need."""

    origin: str
    site_path: str
    scope: str


def _ids(item: Any, what: str) -> Mapping[str, Any]:
    ids = item.get("sharepointIds") if isinstance(item, Mapping) else None
    if not isinstance(ids, Mapping):
        raise MigrationApiError(
            f"Graph gave no sharepointIds for {what}: the Migration API needs a SharePoint "
            "library (a OneDrive or a site's document library)"
        )
    return ids


async def package_target(drive: DriveClient) -> tuple[PackageTarget, str, str]:
    """The target's ids and URLs, and the library's root folder: its driveItem id and its
    SharePoint id."""
    client = drive.client
    root = await client.get_json(
        f"drives/{drive.drive_id}/root", params={"$select": "id,sharepointIds"}
    )
    about = await client.get_json(f"drives/{drive.drive_id}", params={"$select": "id,webUrl"})
    ids = _ids(root, "the library's root folder")
    site_url = str(ids.get("siteUrl") or "").rstrip("/")
    web_path = unquote(urlsplit(site_url).path).rstrip("/")
    library_path = unquote(urlsplit(str(about.get("webUrl") or "")).path).rstrip("/")
    if not (site_url and library_path.lower().startswith(web_path.lower() + "/")):
        raise MigrationApiError(f"cannot place the library {library_path!r} in its site")
    target = PackageTarget(
        site_url=site_url,
        web_id=str(ids["webId"]).lower(),
        web_url=web_path or "/",
        list_id=str(ids["listId"]).lower(),
        list_url=library_path[len(web_path) + 1 :],
    )
    return target, str(root["id"]), str(ids["listItemUniqueId"]).lower()


class FolderIds:
    """The SharePoint id of each folder a package names, by driveItem id, asked once each."""

    def __init__(self, drive: DriveClient) -> None:
        self.drive = drive
        self._known: dict[str, str] = {}

    def remember(self, item_id: str, unique_id: str) -> None:
        self._known[item_id] = unique_id

    async def of(self, item_id: str) -> str:
        known = self._known.get(item_id)
        if known is None:
            item = await self.drive.client.get_json(
                self.drive.item_url(item_id), params={"$select": "id,sharepointIds"}
            )
            known = self._known[item_id] = str(_ids(item, "a folder")["listItemUniqueId"]).lower()
        return known


def rest_endpoint(cloud: Cloud, site_url: str) -> RestEndpoint:
    """Where `site_url`'s `_api/site` calls go. The token's audience is the site's host
    (`https://contoso.sharepoint.com`); the emulator serves every host on its root."""
    parts = urlsplit(site_url)
    host = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    origin = str(cloud.emulator["sharepoint_admin_url"]).rstrip("/") if cloud.is_emulator else host
    return RestEndpoint(origin=origin, site_path=path, scope=f"{host}/.default")
