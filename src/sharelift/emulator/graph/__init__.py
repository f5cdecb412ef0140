"""Graph v1.0 as the emulator serves it: users, sites, drives, driveItems, uploads, downloads,
versions, copy, delta, and JSON batching.

`routes()` returns every route of this half of the emulator:

    POST /v1.0/$batch                 JSON batching (batch.py)
    *    /v1.0/{path}                 everything else under Graph (dispatch.py)
    PUT|GET|DELETE|POST /_upload/{s}  upload-session URLs, unauthenticated (uploads.py)
    GET|HEAD /_download/{token}       pre-authenticated download URLs (downloads.py)
    GET  /_monitor/{token}            status of a copy, unauthenticated (copies.py)

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


def routes() -> list[BaseRoute]:
    """Every route of the Graph half of the emulator."""
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [
        Route("/v1.0/$batch", batch.batch_endpoint, methods=["POST"]),
        Route("/v1.0/{path:path}", graph_endpoint, methods=methods),
        Route(
            "/_upload/{session}", uploads.upload_endpoint, methods=["PUT", "GET", "DELETE", "POST"]
        ),
        Route("/_download/{token}", downloads.download_endpoint, methods=["GET", "HEAD"]),
        Route("/_monitor/{token}", copies.monitor_endpoint, methods=["GET"]),
    ]
