"""Downloads: `…/content` answers 302 to a pre-authenticated URL on the drive's SharePoint host
(`https://contoso.sharepoint.com/sites/Team/_layouts/15/download.aspx?UniqueId=…&tempauth=…`),
which serves the bytes (one byte range at most, as RFC 9110 allows) without an Authorization
header. The URL is good for an hour, on that host only; a bearer token sent along is ignored
(and counted: `bearer_on_download_urls` in the stats)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from sharelift.emulator.graph.addressing import Address, target
from sharelift.emulator.graph.request import on_site_of, store_of
from sharelift.emulator.graph.wire import download_url, error_response
from sharelift.emulator.store import DriveError, Store


async def get_content(request: Request, store: Store, address: Address) -> Response:
    item = target(store, address)
    if item.is_folder or item.content_key is None:
        raise DriveError(404, "itemNotFound", "The item has no content (it is a folder).")
    # Graph answers 302 to a pre-authenticated URL that needs no Authorization header.
    url = download_url(store, address.drive, item, item.content_key)
    return RedirectResponse(url, status_code=302)


async def download_endpoint(request: Request) -> Response:
    store = store_of(request)
    payload = store.signer.unsign(request.query_params.get("tempauth", ""))
    parts = payload.split("|") if payload else []
    if len(parts) != 4 or not parts[3].isdigit():
        return error_response(request, 401, "unauthenticated", "Invalid download token.")
    drive_id, item_id, key, expires = parts
    if int(expires) < time.time():
        return error_response(request, 401, "unauthenticated", "The download URL has expired.")
    drive = store.tenant.drive(drive_id)
    if drive is None or not on_site_of(request, store, drive):
        return error_response(request, 401, "unauthenticated", "Invalid download token.")
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
