"""The drive operations the migration engine needs, over one GraphClient.

`DriveClient` addresses one drive (a OneDrive or a document library). It is made of parts, one
role each:

    paths.py      DriveBase: addressing items by id and by path; encoding path segments
    folders.py    DriveFolders: folders, one by one or in $batch
    uploads.py    DriveUploads: simple upload, upload sessions and their fragments, commit
    versions.py   DriveVersions: a file's versions, deleting old ones

and holds here what is left: reading items, children and delta, downloading content, PATCH and
delete. The module functions find drives: a user's OneDrive, a site by host and path, a site's
libraries.

Everything returns the parsed models of `sharelift.graph.types` and raises the GraphError tree
of `sharelift.graph.errors`; waiting and retrying are the client's and pacer's business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO, Any
from urllib.parse import quote

from sharelift.graph.client import GraphClient
from sharelift.graph.errors import GraphError, MalformedResponse, NotFound
from sharelift.graph.folders import DriveFolders
from sharelift.graph.paths import ConflictBehavior, encode_path, encode_segment, quote_id
from sharelift.graph.transport import json_body
from sharelift.graph.types import DeltaPage, Drive, DriveItem, FileSystemInfo, Site
from sharelift.graph.uploads import (
    DEFAULT_FRAGMENT,
    FRAGMENT_LIMIT,
    FRAGMENT_UNIT,
    MAX_FRAGMENT,
    DriveUploads,
    FragmentResult,
    NewFile,
    check_fragment_size,
    content_range,
    fragment_ranges,
)
from sharelift.graph.versions import DriveVersions

__all__ = [
    "DEFAULT_FRAGMENT",
    "FRAGMENT_LIMIT",
    "FRAGMENT_UNIT",
    "MAX_FRAGMENT",
    "ConflictBehavior",
    "DriveClient",
    "FragmentResult",
    "NewFile",
    "check_fragment_size",
    "content_range",
    "encode_path",
    "encode_segment",
    "fragment_ranges",
    "get_drive",
    "get_site",
    "get_site_drive",
    "get_user_drive",
    "list_site_drives",
]


class DriveClient(DriveFolders, DriveUploads, DriveVersions):
    """Operations on one drive. Cheap to create; holds no state but the drive id."""

    # -- reading ---------------------------------------------------------------------------

    async def get_drive(self) -> Drive:
        """The drive itself (name, type, webUrl, quota, owner)."""
        return Drive.from_json(await self.client.get_json(self._drive))

    async def get_root(self) -> DriveItem:
        return DriveItem.from_json(await self.client.get_json(f"{self._drive}/root"))

    async def get_item(self, item_id: str) -> DriveItem:
        """An item by id. Raises NotFound."""
        return DriveItem.from_json(await self.client.get_json(self.item_url(item_id)))

    async def list_children(
        self, item_id: str, *, page_size: int = 1000
    ) -> AsyncIterator[DriveItem]:
        """The children of a folder, `page_size` (≤ 1000) per request, across every page."""
        params = {"$top": max(1, min(page_size, 1000))}
        async for page in self.client.pages(f"{self.item_url(item_id)}/children", params=params):
            values = page.get("value")
            if not isinstance(values, list):
                raise GraphError("Graph returned a children page without value")
            for value in values:
                yield DriveItem.from_json(value)

    async def delta(self, link: str | None = None) -> AsyncIterator[DeltaPage]:
        """Changes since `link` (a deltaLink saved from an earlier run), or everything.

        Yields each page; the last one carries `delta_link`, to save for next time. Raises
        Gone (410) when the saved link is too old: enumerate again with `link=None`.
        """
        url = link if link is not None else f"{self._drive}/root/delta"
        while True:
            page = DeltaPage.from_json(await self.client.get_json(url))
            yield page
            if page.next_link is None:
                return
            url = page.next_link

    async def download(self, item_id: str, sink: IO[bytes]) -> int:
        """Stream the current content of a file into `sink`; returns its length.

        `GET …/content` answers 302 to a pre-authenticated URL (on the drive's SharePoint host
        in a real tenant), fetched without the Graph token, a piece at a time
        (https://learn.microsoft.com/graph/api/driveitem-get-content). Raises NotFound.
        """
        response = await self.client.request("GET", f"{self.item_url(item_id)}/content")
        location = response.headers.get("Location")
        if response.status_code not in (301, 302, 303, 307, 308) or not location:
            raise MalformedResponse("Graph answered a download without redirecting to the content")
        return await self.client.download(location, sink)

    # -- changing and deleting -------------------------------------------------------------

    async def update_item(
        self,
        item_id: str,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        file_system_info: FileSystemInfo | None = None,
        if_match: str | None = None,
    ) -> DriveItem:
        """PATCH an item: rename, move to `parent_id`, set its times. Setting the same values
        twice is harmless, so the PATCH is retried like an idempotent call. Raises
        PreconditionFailed when `if_match` (an eTag) no longer matches.
        """
        body: dict[str, Any] = {}
        if name is not None:
            encode_segment(name)
            body["name"] = name
        if parent_id is not None:
            body["parentReference"] = {"id": parent_id}
        if file_system_info is not None:
            body["fileSystemInfo"] = file_system_info.to_json()
        if not body:
            raise ValueError("update_item needs something to change")
        response = await self.client.request(
            "PATCH",
            self.item_url(item_id),
            json=body,
            headers={"If-Match": if_match} if if_match else None,
            retry_safe=True,
        )
        return DriveItem.from_json(json_body(response))

    async def delete_item(
        self, item_id: str, *, if_match: str | None = None, missing_ok: bool = False
    ) -> None:
        """Delete an item (to the recycle bin).

        Raises NotFound when it is not there, unless `missing_ok`: a DELETE repeated after a
        lost response meets exactly that, so callers that only want it gone pass True.
        """
        try:
            await self.client.request(
                "DELETE",
                self.item_url(item_id),
                headers={"If-Match": if_match} if if_match else None,
            )
        except NotFound:
            if not missing_ok:
                raise


# -- finding drives and sites --------------------------------------------------------------


async def get_drive(client: GraphClient, drive_id: str) -> Drive:
    """A drive by id."""
    return Drive.from_json(await client.get_json(f"/drives/{quote_id(drive_id)}"))


async def get_user_drive(client: GraphClient, user: str) -> Drive:
    """A user's OneDrive by UPN or id. Raises NotFound when it is not provisioned."""
    return Drive.from_json(await client.get_json(f"/users/{quote(user, safe='@')}/drive"))


async def get_site(client: GraphClient, hostname: str, path: str = "") -> Site:
    """A site by host name and server-relative path ("" for the root site)."""
    host = quote(hostname, safe="")
    encoded = encode_path(path)
    url = f"/sites/{host}:/{encoded}" if encoded else f"/sites/{host}"
    return Site.from_json(await client.get_json(url))


async def get_site_drive(client: GraphClient, site_id: str) -> Drive:
    """A site's default document library."""
    return Drive.from_json(await client.get_json(f"/sites/{quote_id(site_id)}/drive"))


async def list_site_drives(client: GraphClient, site_id: str) -> list[Drive]:
    """Every document library of a site (a handful; all pages are read)."""
    drives: list[Drive] = []
    async for page in client.pages(f"/sites/{quote_id(site_id)}/drives"):
        values = page.get("value")
        if not isinstance(values, list):
            raise GraphError("Graph returned a drives page without value")
        drives.extend(Drive.from_json(v) for v in values)
    return drives
