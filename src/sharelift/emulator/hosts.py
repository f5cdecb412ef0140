"""Which host serves what: the emulator listens on one port for every host of the tenant, and
tells them apart by the host the client named (Host, or HTTP/2's :authority).

    graph.microsoft.com              Graph (`/v1.0/...`) and its copy monitors
    login.microsoftonline.com        sign-in
    {tenant}.sharepoint.com          SharePoint: sites' REST (`/_api/...`), upload and
    {tenant}-my.sharepoint.com       download URLs (`/_api/v2.0/.../uploadSession`,
    {tenant}-admin.sharepoint.com    `/_layouts/15/download.aspx`), under a site's path or not
    anything else (127.0.0.1, localhost, a name of the machine): everything, as emulator.json's
    `base_url` has always served it

A request for a path its host does not serve is answered 404, as the real hosts would, so a
client that sends, say, an upload URL's path to Graph's host learns it at once. Clients reach
the SharePoint hosts through emulator.json's `connect` map (or a proxy that maps them, as
tests/support/connect_proxy.py does): see docs/emulator.md.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from sharelift.emulator.asgi import drain, header_value, send_graph_error

GRAPH_HOST = "graph.microsoft.com"
LOGIN_HOST = "login.microsoftonline.com"
_SITE_PATHS = ("/sites/", "/teams/", "/personal/")


def sharepoint_hosts(tenant: str) -> dict[str, str]:
    """The tenant's SharePoint host names by role: root, my, admin."""
    return {
        "root": f"{tenant}.sharepoint.com",
        "my": f"{tenant}-my.sharepoint.com",
        "admin": f"{tenant}-admin.sharepoint.com",
    }


def path_role(path: str) -> str:
    """What a path belongs to: "graph", "sharepoint", "admin" (the emulator's own) or
    "identity"."""
    if path.startswith("/_emulator/"):
        return "admin"
    if path.startswith(("/v1.0/", "/_monitor/")):
        return "graph"
    if path.startswith(("/_api/", "/_layouts/")) or (
        path.startswith(_SITE_PATHS) and ("/_api/" in path or "/_layouts/" in path)
    ):
        return "sharepoint"
    return "identity"


class HostsMiddleware:
    """Pure ASGI: refuses (404) a request whose host does not serve its path."""

    def __init__(self, app: ASGIApp, tenant: str) -> None:
        self.app = app
        self.roles = {GRAPH_HOST: "graph", LOGIN_HOST: "identity"}
        self.roles |= {host: "sharepoint" for host in sharepoint_hosts(tenant).values()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = (header_value(scope, b"host") or "").lower().rsplit(":", 1)[0]
        served = self.roles.get(host)
        role = path_role(scope["path"])
        if served is None or role in (served, "admin"):
            await self.app(scope, receive, send)
            return
        await drain(receive)
        await send_graph_error(
            scope, send, 404, "notFound", f"{host} does not serve {scope['path']}"
        )
