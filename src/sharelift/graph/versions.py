"""A file's versions: list them, delete the old ones.

OneDrive for Business and SharePoint keep a version of a file on every change, and every
version counts against the site's quota. Graph lists them
(https://learn.microsoft.com/graph/api/driveitem-list-versions: the current version first).
Graph's v1.0 reference documents no way to delete one, but the `versions` collection of a
driveItem takes a DELETE of one of its members (`DELETE /drives/{d}/items/{id}/versions/{v}`;
Microsoft's generated Graph SDKs expose it as "delete navigation property versions", and
rclone's `--onedrive-no-versions` and `cleanup` rely on it). It works on OneDrive for Business
and SharePoint; OneDrive personal answers "API not found", and the current version cannot be
deleted (restore an older one instead).

`DriveVersions` is the versions part of `DriveClient` (`graph/drive.py`).
"""

from __future__ import annotations

import contextlib

from sharelift.graph.errors import GraphError, NotFound
from sharelift.graph.paths import DriveBase, quote_id
from sharelift.graph.types import DriveItemVersion


class DriveVersions(DriveBase):
    """Versions of the files of one drive."""

    async def list_versions(self, item_id: str) -> list[DriveItemVersion]:
        """Every version of a file, the current one first (all pages)."""
        versions: list[DriveItemVersion] = []
        async for page in self.client.pages(f"{self.item_url(item_id)}/versions"):
            values = page.get("value")
            if not isinstance(values, list):
                raise GraphError("Graph returned a versions page without value")
            versions.extend(DriveItemVersion.from_json(v) for v in values)
        return versions

    async def delete_version(self, item_id: str, version_id: str) -> None:
        """Delete one older version of a file. A version already gone counts as deleted (a
        DELETE repeated after a lost answer meets exactly that)."""
        with contextlib.suppress(NotFound):
            await self.client.request(
                "DELETE", f"{self.item_url(item_id)}/versions/{quote_id(version_id)}"
            )
