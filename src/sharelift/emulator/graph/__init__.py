"""Graph v1.0 as the emulator serves it: users, sites, drives, driveItems, uploads, downloads,
versions, copy, delta, and JSON batching.

`routes()` returns every route of this half of the emulator:

    POST /v1.0/$batch                 JSON batching (batch.py)
    *    /v1.0/{path}                 everything else under Graph (dispatch.py)
    PUT|GET|DELETE|POST {site}/_api/v2.0/drives/{d}/items/{i}/uploadSession?guid=…&tempauth=…
                                      upload-session URLs, on the drive's SharePoint host,
                                      authenticated by the URL (uploads.py)
    GET|HEAD {site}/_layouts/15/download.aspx?UniqueId=…&tempauth=…
                                      pre-authenticated download URLs, likewise (downloads.py)
    GET  /_monitor/{token}            status of a copy, unauthenticated (copies.py)

`{site}` is "" for a host's root site, else `/sites/NAME`, `/teams/NAME` or `/personal/NAME`.

Modules, by resource: `directory` (users, sites, drives), `items` (items and children),
`uploads` (simple upload, upload sessions), `downloads`, `versions`, `delta`, `copies`; the
router `dispatch` (with its table of item actions), `addressing` (what a path names),
`request` (what handlers read of a request), `wire` (Graph's JSON shapes and errors).

Authentication happened before a handler runs (the platform's middleware sets
`request.state.principal`); the store is `request.app.state.store`, read at request time.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from sharelift.emulator.graph import batch, copies, downloads, uploads
from sharelift.emulator.graph.dispatch import graph_endpoint

SITE_PREFIXES = ("", "/sites/{site}", "/teams/{site}", "/personal/{site}")
"""Where a site lives on its host: the root site, or a site collection under a managed path."""


def routes() -> list[BaseRoute]:
    """Every route of the Graph half of the emulator."""
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/v1.0/$batch", batch.batch_endpoint, methods=["POST"]),
        Route("/v1.0/{path:path}", graph_endpoint, methods=methods),
        *(
            Route(
                f"{site}/_api/v2.0/drives/{{drive}}/items/{{item}}/uploadSession",
                uploads.upload_endpoint,
                methods=["PUT", "GET", "DELETE", "POST"],
            )
            for site in SITE_PREFIXES
        ),
        *(
            Route(
                f"{site}/_layouts/15/download.aspx",
                downloads.download_endpoint,
                methods=["GET", "HEAD"],
            )
            for site in SITE_PREFIXES
        ),
        Route("/_monitor/{token}", copies.monitor_endpoint, methods=["GET"]),
    ]
