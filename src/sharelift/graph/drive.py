"""The drive operations the migration engine needs, over one GraphClient.

`DriveClient` addresses one drive (a OneDrive or a document library): items by id and by path,
children, folders (one by one or in $batch), simple upload, upload sessions and their
fragments, PATCH, delete, delta. The module functions find drives: a user's OneDrive, a site by
host and path, a site's libraries.

Everything returns the parsed models of `sharelift.graph.types` and raises the GraphError tree
of `sharelift.graph.errors`; waiting and retrying are the client's and pacer's business.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from sharelift.graph.client import MAX_BATCH, BatchRequest, GraphClient, json_body
from sharelift.graph.errors import (
    Conflict,
    FailedDependency,
    GraphError,
    InvalidRange,
    NotFound,
)
from sharelift.graph.types import (
    DeltaPage,
    Drive,
    DriveItem,
    FileSystemInfo,
    Site,
    UploadSession,
)

ConflictBehavior = Literal["fail", "replace", "rename"]

# Upload session fragments: a multiple of 320 KiB except the last, each under 60 MiB.
# https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession
FRAGMENT_UNIT = 320 * 1024
FRAGMENT_LIMIT = 60 * 1024 * 1024  # exclusive
MAX_FRAGMENT = (FRAGMENT_LIMIT - 1) // FRAGMENT_UNIT * FRAGMENT_UNIT
DEFAULT_FRAGMENT = 32 * FRAGMENT_UNIT  # 10 MiB


def encode_segment(name: str) -> str:
    """One path segment percent-encoded as an RFC 3986 pchar-safe string.

    Everything but the unreserved characters is encoded, so `+` travels as `%2B` (a literal
    plus, never a space), `#` as `%23`, `%` as `%25`, non-ASCII as UTF-8 octets. Raises
    ValueError for an empty, `.` or `..` segment, or one containing `/`.
    """
    if name in ("", ".", "..") or "/" in name:
        raise ValueError(f"not a usable path segment: {name!r}")
    return quote(name, safe="")


def encode_path(path: str) -> str:
    """A relative path (`a/b c/d`) with each segment encoded on its own; "" for the root."""
    stripped = path.strip("/")
    if not stripped:
        return ""
    return "/".join(encode_segment(segment) for segment in stripped.split("/"))


def _id(value: str) -> str:
    # Drive ids ("b!…"), site ids ("host,guid,guid") and item ids use pchar-safe characters;
    # anything else is encoded so an id can never change the shape of the URL.
    if not value:
        raise ValueError("an empty id")
    return quote(value, safe="!,")


def content_range(offset: int, length: int, total: int) -> str:
    """The Content-Range header of a fragment: `bytes first-last/total`, both ends inclusive."""
    return f"bytes {offset}-{offset + length - 1}/{total}"


def check_fragment_size(size: int) -> None:
    """Raise ValueError unless `size` is a positive multiple of 320 KiB under 60 MiB."""
    if size <= 0 or size % FRAGMENT_UNIT or size >= FRAGMENT_LIMIT:
        raise ValueError(
            f"a fragment size must be a positive multiple of {FRAGMENT_UNIT} bytes "
            f"below {FRAGMENT_LIMIT}, not {size}"
        )


def fragment_ranges(
    total: int, fragment_size: int = DEFAULT_FRAGMENT, *, start: int = 0
) -> Iterator[tuple[int, int]]:
    """(offset, length) of each fragment of a `total`-byte file, from `start` on.

    `start` is where a resumed session expects the next byte; it must sit on a fragment
    boundary of 320 KiB (Graph's nextExpectedRanges always does for sessions we fed).
    """
    check_fragment_size(fragment_size)
    if total <= 0:
        raise ValueError("an upload session needs at least one byte; upload empty files simply")
    if not 0 <= start < total or start % FRAGMENT_UNIT:
        raise ValueError(f"cannot resume at byte {start} of {total}")
    for offset in range(start, total, fragment_size):
        yield offset, min(fragment_size, total - offset)


@dataclass(frozen=True, slots=True)
class FragmentResult:
    """What Graph said after a fragment: the ranges still expected, or the finished item."""

    next_expected_ranges: tuple[str, ...]
    item: DriveItem | None

    @property
    def done(self) -> bool:
        return self.item is not None


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file to create through an upload session, with the times to give it on arrival."""

    parent_id: str
    name: str
    size: int
    created: datetime | None = None
    modified: datetime | None = None
    conflict: ConflictBehavior = "replace"
    item_id: str | None = None
    """The existing file whose content this replaces, addressed by id (wherever it is and
    whatever it is named now); None to address `name` in `parent_id`."""


class DriveClient:
    """Operations on one drive. Cheap to create; holds no state but the drive id."""

    def __init__(self, client: GraphClient, drive_id: str) -> None:
        self.client = client
        self.drive_id = drive_id
        self._drive = f"/drives/{_id(drive_id)}"

    def __repr__(self) -> str:
        return f"DriveClient(drive_id={self.drive_id!r})"

    # -- addressing ------------------------------------------------------------------------

    def item_url(self, item_id: str) -> str:
        """`/drives/{d}/items/{id}` (relative to the version root)."""
        return f"{self._drive}/items/{_id(item_id)}"

    def path_url(self, path: str, *, under: str | None = None, action: str = "") -> str:
        """An item addressed by path: `/drives/{d}/root:/a/b` or `/items/{under}:/a/b`.

        `action` ("children", "content", "createUploadSession") is appended after `:/`.
        An empty path means the root (or `under` itself).
        """
        base = self.item_url(under) if under is not None else f"{self._drive}/root"
        encoded = encode_path(path)
        if not encoded:
            return f"{base}/{action}" if action else base
        return f"{base}:/{encoded}:/{action}" if action else f"{base}:/{encoded}"

    # -- reading ---------------------------------------------------------------------------

    async def get_drive(self) -> Drive:
        """The drive itself (name, type, webUrl, quota, owner)."""
        return Drive.from_json(await self.client.get_json(self._drive))

    async def get_root(self) -> DriveItem:
        return DriveItem.from_json(await self.client.get_json(f"{self._drive}/root"))

    async def get_item(self, item_id: str) -> DriveItem:
        """An item by id. Raises NotFound."""
        return DriveItem.from_json(await self.client.get_json(self.item_url(item_id)))

    async def get_item_by_path(self, path: str, *, under: str | None = None) -> DriveItem:
        """An item by path from the root, or from folder `under`. Raises NotFound."""
        return DriveItem.from_json(await self.client.get_json(self.path_url(path, under=under)))

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

    # -- folders ---------------------------------------------------------------------------

    def folder_request(
        self, request_id: str, path: str, *, under: str, conflict: ConflictBehavior = "fail"
    ) -> BatchRequest:
        """A $batch request creating folder `path` (relative to folder `under`)."""
        parent, _, name = path.strip("/").rpartition("/")
        return BatchRequest(
            id=request_id,
            method="POST",
            url=self.path_url(parent, under=under, action="children"),
            body=_folder_body(name, conflict),
            retry_safe=conflict != "rename",
        )

    async def create_folder(
        self,
        parent_id: str,
        name: str,
        *,
        conflict: ConflictBehavior = "fail",
        existing_ok: bool = False,
    ) -> DriveItem:
        """Create folder `name` in `parent_id`.

        With conflict "fail" and `existing_ok`, an existing folder of that name is returned
        instead of raising NameAlreadyExists; an existing *file* still raises. "fail" and
        "replace" are retried after a lost response (a repeat then meets the folder it made);
        "rename" is not, as a repeat would make "name 1".
        """
        encode_segment(name)
        try:
            response = await self.client.request(
                "POST",
                f"{self.item_url(parent_id)}/children",
                json=_folder_body(name, conflict),
                retry_safe=conflict != "rename",
            )
        except Conflict:
            if conflict != "fail" or not existing_ok:
                raise
            existing = await self.get_item_by_path(name, under=parent_id)
            if not existing.is_folder:
                raise
            return existing
        return DriveItem.from_json(json_body(response))

    async def create_folders(
        self,
        paths: Sequence[str],
        *,
        under: str,
        conflict: ConflictBehavior = "fail",
        existing_ok: bool = True,
    ) -> list[DriveItem | GraphError]:
        """Create many folders (paths relative to folder `under`) in as few $batch calls as fit.

        A path's parent must be listed before it or exist already. Folders whose parents are
        ready go out 20 to a batch; a lone ready folder with descendants goes out as a serial
        `dependsOn` chain with them. With conflict "fail" and `existing_ok`, existing folders
        are fetched and returned as if created. Returns, in the order of `paths`, each folder
        or the error that stopped it (FailedDependency when its parent failed); never raises
        for one folder's failure.
        """
        order = [p.strip("/") for p in paths]
        position = {p: i for i, p in enumerate(order)}
        if len(position) != len(order):
            raise ValueError("create_folders got the same path twice")
        for i, path in enumerate(order):
            if not encode_path(path):
                raise ValueError("create_folders got the root as a path")
            parent = _parent(path)
            if parent in position and position[parent] > i:
                raise ValueError(f"{path!r} is listed before its parent")
        results: dict[str, DriveItem | GraphError] = {}
        pending = list(order)
        dependency_failures: dict[str, int] = {}
        while pending:
            chunk, serial = _next_chunk(pending)
            requests = [
                self.folder_request(str(n), path, under=under, conflict=conflict)
                for n, path in enumerate(chunk, 1)
            ]
            if serial:
                requests = [
                    _depending(r, requests[n - 1].id) if n else r for n, r in enumerate(requests)
                ]
            answers = await self.client.batch(requests)
            existing: list[tuple[str, GraphError]] = []
            for path, request, answer in zip(chunk, requests, answers, strict=True):
                if answer.ok:
                    results[path] = DriveItem.from_json(answer.body)
                elif answer.status == 409 and conflict == "fail" and existing_ok:
                    existing.append((path, answer.error(request)))
                elif answer.status == 424 and dependency_failures.get(path, 0) == 0:
                    dependency_failures[path] = 1  # its chain was cut: try it again on its own
                else:
                    results[path] = answer.error(request)
            if existing:
                await self._fetch_existing(existing, under, results)
            pending = _settle(pending, results)
        return [results[p] for p in order]

    async def _fetch_existing(
        self,
        conflicts: list[tuple[str, GraphError]],
        under: str,
        results: dict[str, DriveItem | GraphError],
    ) -> None:
        for start in range(0, len(conflicts), MAX_BATCH):
            part = conflicts[start : start + MAX_BATCH]
            requests = [
                BatchRequest(id=str(n), method="GET", url=self.path_url(path, under=under))
                for n, (path, _) in enumerate(part, 1)
            ]
            answers = await self.client.batch(requests)
            for (path, conflict_error), request, answer in zip(
                part, requests, answers, strict=True
            ):
                if not answer.ok:
                    results[path] = answer.error(request)
                    continue
                item = DriveItem.from_json(answer.body)
                results[path] = item if item.is_folder else conflict_error

    # -- uploads ---------------------------------------------------------------------------

    async def simple_upload(
        self, parent_id: str, name: str, data: bytes, *, conflict: ConflictBehavior = "replace"
    ) -> DriveItem:
        """Create or replace `name` in `parent_id` with one PUT of `data`.

        It cannot set fileSystemInfo; patching the times afterwards makes a second version on
        OneDrive for Business, so the engine uses it only where times do not matter (or for
        empty files). Not retried after a lost response when conflict is "rename".
        """
        response = await self.client.request(
            "PUT",
            self.path_url(name, under=parent_id, action="content"),
            params={"@microsoft.graph.conflictBehavior": conflict},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
            retry_safe=conflict != "rename",
        )
        return DriveItem.from_json(json_body(response))

    def upload_session_request(self, request_id: str, new: NewFile) -> BatchRequest:
        """A $batch request creating an upload session for `new` (see create_upload_session)."""
        url = (
            f"{self.item_url(new.item_id)}/createUploadSession"
            if new.item_id is not None
            else self.path_url(new.name, under=new.parent_id, action="createUploadSession")
        )
        return BatchRequest(
            id=request_id,
            method="POST",
            url=url,
            body=_session_body(new),
            retry_safe=True,
        )

    async def create_upload_session(self, new: NewFile) -> UploadSession:
        """Open an upload session that will create `new` (or replace the content of the file
        `new.item_id`) with its times, in one version. Raises NotFound when that file is gone.

        Retried after a lost response: the worst case is an orphaned empty session, which Graph
        expires on its own. The caller owns the returned session: finish it or cancel it.
        """
        request = self.upload_session_request("1", new)
        response = await self.client.request(
            "POST", request.url, json=request.body, retry_safe=True
        )
        return _session(json_body(response))

    async def create_upload_sessions(
        self, files: Sequence[NewFile]
    ) -> list[UploadSession | GraphError]:
        """Open upload sessions for many files, 20 per $batch; results in input order."""
        results: list[UploadSession | GraphError] = []
        for start in range(0, len(files), MAX_BATCH):
            part = files[start : start + MAX_BATCH]
            requests = [self.upload_session_request(str(n), f) for n, f in enumerate(part, 1)]
            for request, answer in zip(requests, await self.client.batch(requests), strict=True):
                results.append(_session(answer.body) if answer.ok else answer.error(request))
        return results

    async def upload_fragment(
        self, upload_url: str, data: bytes | memoryview, *, offset: int, total: int
    ) -> FragmentResult:
        """PUT bytes [offset, offset+len(data)) of a `total`-byte file to its session.

        `data` may be a memoryview into a reusable buffer; it is streamed, not copied whole.
        No Authorization header goes to the upload URL. When Graph answers 416 because an
        earlier attempt of this very fragment already arrived, the session status proves it and
        the fragment counts as accepted. Raises InvalidRange otherwise, NotFound for an
        expired or finished session, NameAlreadyExists when the name was taken at commit.
        """
        length = data.nbytes if isinstance(data, memoryview) else len(data)
        if length <= 0 or offset < 0 or offset + length > total:
            raise ValueError(f"fragment {offset}+{length} does not fit a {total}-byte file")
        if length >= FRAGMENT_LIMIT or (offset + length < total and length % FRAGMENT_UNIT):
            raise ValueError(f"fragment of {length} bytes breaks the 320 KiB / 60 MiB rules")
        try:
            response = await self.client.request(
                "PUT",
                upload_url,
                content=data,
                headers={"Content-Range": content_range(offset, length, total)},
                auth=False,
            )
        except InvalidRange:
            status = await self.upload_session_status(upload_url)
            expected = status.next_offset
            if expected is not None and expected >= offset + length:
                return FragmentResult(status.next_expected_ranges, None)
            raise
        body = json_body(response)
        if response.status_code == 202:
            return FragmentResult(_session(body).next_expected_ranges, None)
        return FragmentResult((), DriveItem.from_json(body))

    async def upload_session_status(self, upload_url: str) -> UploadSession:
        """The session's expiry and the ranges it still expects. Raises NotFound when gone."""
        return _session(json_body(await self.client.request("GET", upload_url, auth=False)))

    async def cancel_upload_session(self, upload_url: str) -> None:
        """Cancel a session (DELETE). A session already gone counts as cancelled."""
        with contextlib.suppress(NotFound):
            await self.client.request("DELETE", upload_url, auth=False)

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
    return Drive.from_json(await client.get_json(f"/drives/{_id(drive_id)}"))


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
    return Drive.from_json(await client.get_json(f"/sites/{_id(site_id)}/drive"))


async def list_site_drives(client: GraphClient, site_id: str) -> list[Drive]:
    """Every document library of a site (a handful; all pages are read)."""
    drives: list[Drive] = []
    async for page in client.pages(f"/sites/{_id(site_id)}/drives"):
        values = page.get("value")
        if not isinstance(values, list):
            raise GraphError("Graph returned a drives page without value")
        drives.extend(Drive.from_json(v) for v in values)
    return drives


# -- helpers -------------------------------------------------------------------------------


def _folder_body(name: str, conflict: ConflictBehavior) -> dict[str, Any]:
    return {"name": name, "folder": {}, "@microsoft.graph.conflictBehavior": conflict}


def _session_body(new: NewFile) -> dict[str, Any]:
    # driveItemUploadableProperties: name, fileSize (a quota check up front) and fileSystemInfo,
    # so the file arrives with its times in a single version.
    # https://learn.microsoft.com/en-us/graph/api/resources/driveitemuploadableproperties
    encode_segment(new.name)
    item: dict[str, Any] = {
        "@microsoft.graph.conflictBehavior": new.conflict,
        "name": new.name,
        "fileSize": new.size,
    }
    if new.item_id is not None:
        del item["name"]  # the addressed file keeps its own name
    times = FileSystemInfo(created=new.created, last_modified=new.modified).to_json()
    if times:
        item["fileSystemInfo"] = times
    return {"item": item, "deferCommit": False}


def _session(body: Any) -> UploadSession:
    return UploadSession.from_json(body)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _depending(request: BatchRequest, on: str) -> BatchRequest:
    return BatchRequest(
        id=request.id,
        method=request.method,
        url=request.url,
        body=request.body,
        headers=request.headers,
        depends_on=(on,),
        retry_safe=request.retry_safe,
    )


def _next_chunk(pending: list[str]) -> tuple[list[str], bool]:
    """The folders to send next, and whether they form a serial dependsOn chain.

    Ready folders (parent not pending) go out in parallel, 20 at most. A single ready folder
    instead leads a chain: each next member is the first pending child of the previous one.
    """
    waiting = set(pending)
    ready = [p for p in pending if _parent(p) not in waiting]
    if len(ready) > 1:
        return ready[:MAX_BATCH], False
    chain = [ready[0]]
    for path in pending:
        if len(chain) == MAX_BATCH:
            break
        if _parent(path) == chain[-1]:
            chain.append(path)
    return chain, len(chain) > 1


def _settle(pending: list[str], results: dict[str, DriveItem | GraphError]) -> list[str]:
    """Drop settled folders; fail the descendants of failed ones (parents come first)."""
    still: list[str] = []
    for path in pending:
        if path in results:
            continue
        parent = results.get(_parent(path))
        if isinstance(parent, GraphError):
            results[path] = FailedDependency(
                f"parent folder failed: {parent.message}", status=424, code="failedDependency"
            )
            continue
        still.append(path)
    return still
