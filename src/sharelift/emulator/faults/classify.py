"""What a request is (its kind, for the log) and what it costs in resource units.

Costs follow "Avoid getting throttled or blocked in SharePoint Online"
(https://learn.microsoft.com/sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online):
1 for a single-item GET, a delta call with a token or a download; 2 for listing children, delta
without a token, create/update/delete/upload; 5 for permission operations.
"""

from __future__ import annotations

from dataclasses import dataclass

UPLOAD_SUFFIX = "/uploadSession"
"""How upload-session URLs end (`…/_api/v2.0/drives/{d}/items/{i}/uploadSession`, on a
SharePoint host; authenticated by the URL; fragment PUTs count as uploads)."""
DOWNLOAD_SUFFIX = "/_layouts/15/download.aspx"
"""How pre-authenticated download URLs end (on a SharePoint host)."""
PREAUTHENTICATED_KINDS = ("upload", "upload-session", "download-url")
"""Kinds of requests to URLs that carry their own credential."""

_PERMISSION_SEGMENTS = ("permissions", "invite", "createLink", "grant", "revokeGrants")


@dataclass(frozen=True)
class Classified:
    """What a request is, for the log and for throttling."""

    kind: str
    ru: int
    graph: bool
    """Subject to throttling and injected errors (Graph API, upload and download URLs)."""


def classify(method: str, path: str, query: bytes) -> Classified:
    """Kind and resource-unit cost of a request, by method and path."""
    if path.startswith("/_emulator/"):
        return Classified("admin", 0, False)
    if "/_api/v2.0/" in path and path.endswith(UPLOAD_SUFFIX):
        if method == "PUT":
            return Classified("upload", 2, True)
        return Classified("upload-session", 2 if method == "DELETE" else 1, True)
    if path.endswith(DOWNLOAD_SUFFIX):
        return Classified("download-url", 1, True)
    if "/_api/site/" in path:
        # The Migration API's SP.Site calls, on any site; their throttling is their own fault.
        return Classified("migration", 0, False)
    if path.startswith("/_api/"):
        return Classified("sharepoint", 0, False)
    if not path.startswith("/v1.0/"):
        return Classified("identity", 0, False)
    if path == "/v1.0/$batch":
        return Classified("batch", 0, True)
    segments = path.rstrip("/").split("/")
    last = segments[-1]
    if any(s.startswith(_PERMISSION_SEGMENTS) for s in segments[3:]):
        return Classified("permission", 5, True)
    if method in ("GET", "HEAD"):
        if last.startswith("delta") or last.endswith("delta()"):
            with_token = b"token=" in query or b"deltatoken=" in query
            return Classified("delta", 1 if with_token else 2, True)
        if last in ("content", "$value") or last.endswith(":content"):
            return Classified("download", 1, True)
        if last in ("children", "drives", "items", "users", "sites", "versions"):
            return Classified("list", 2, True)
        return Classified("get", 1, True)
    if method == "PUT" and (last == "content" or last.endswith(":content")):
        return Classified("upload", 2, True)
    return Classified("write", 2, True)
