"""Putting file content into a drive: simple upload, and upload sessions with their fragments.

`DriveUploads` is the upload part of `DriveClient` (`graph/drive.py`). An upload session
(https://learn.microsoft.com/graph/api/driveitem-createuploadsession) is created for a file
with its name, size, times and conflict behaviour; its bytes are PUT in fragments (multiples
of 320 KiB, each under 60 MiB, in order) to a pre-authenticated upload URL, which in a real
tenant lives on the drive's SharePoint host and carries its credential (`tempauth=`): it is
called without Authorization and never shown in a message (`graph/transport.py`). The last
fragment commits the file, or, with `deferCommit`, an explicit POST does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sharelift.graph.batch import MAX_BATCH, BatchRequest
from sharelift.graph.errors import GraphError, InvalidRange, NotFound
from sharelift.graph.paths import ConflictBehavior, DriveBase, encode_segment
from sharelift.graph.transport import json_body
from sharelift.graph.types import DriveItem, FileSystemInfo, UploadSession

# Upload session fragments: a multiple of 320 KiB except the last, each under 60 MiB.
# https://learn.microsoft.com/en-us/graph/api/driveitem-createuploadsession
FRAGMENT_UNIT = 320 * 1024
FRAGMENT_LIMIT = 60 * 1024 * 1024  # exclusive
MAX_FRAGMENT = (FRAGMENT_LIMIT - 1) // FRAGMENT_UNIT * FRAGMENT_UNIT
DEFAULT_FRAGMENT = 32 * FRAGMENT_UNIT  # 10 MiB


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
    defer_commit: bool = False
    """The file is made only by an explicit `commit_upload_session`, once every byte is in
    (`deferCommit`): its sender checks the source first."""


class DriveUploads(DriveBase):
    """Simple upload and upload sessions on one drive."""

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
        `new.item_id`) with its times, in one version. Raises NotFound when that file is gone,
        QuotaExceeded (507) when the drive has no room for `new.size` bytes.

        Retried after a lost response: the worst case is an orphaned empty session, which Graph
        expires on its own. The caller owns the returned session: finish it or cancel it.
        """
        request = self.upload_session_request("1", new)
        response = await self.client.request(
            "POST", request.url, json=request.body, retry_safe=True
        )
        return UploadSession.from_json(json_body(response))

    async def create_upload_sessions(
        self, files: Sequence[NewFile]
    ) -> list[UploadSession | GraphError]:
        """Open upload sessions for many files, 20 per $batch; results in input order."""
        results: list[UploadSession | GraphError] = []
        for start in range(0, len(files), MAX_BATCH):
            part = files[start : start + MAX_BATCH]
            requests = [self.upload_session_request(str(n), f) for n, f in enumerate(part, 1)]
            for request, answer in zip(requests, await self.client.batch(requests), strict=True):
                if answer.ok:
                    results.append(UploadSession.from_json(answer.body))
                else:
                    results.append(answer.error(request))
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
        With `deferCommit`, the last fragment's answer is 202 with no range left to send.
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
            if (expected is not None and expected >= offset + length) or (
                expected is None and offset + length == total
            ):
                return FragmentResult(status.next_expected_ranges, None)
            raise
        body = json_body(response)
        if response.status_code == 202:
            return FragmentResult(UploadSession.from_json(body).next_expected_ranges, None)
        return FragmentResult((), DriveItem.from_json(body))

    async def upload_session_status(self, upload_url: str) -> UploadSession:
        """The session's expiry and the ranges it still expects. Raises NotFound when gone."""
        response = await self.client.request("GET", upload_url, auth=False)
        return UploadSession.from_json(json_body(response))

    async def commit_upload_session(self, upload_url: str) -> DriveItem:
        """Make the file of a session opened with `deferCommit`, once it holds every byte: a
        POST of no content to the upload URL ("currently only supported on OneDrive for
        Business and SharePoint", the page above). Raises NotFound when the session is gone
        (already committed, expired or cancelled), NameAlreadyExists when the name was taken.
        Not repeated after a lost answer: the caller looks for the file instead."""
        response = await self.client.request(
            "POST", upload_url, content=b"", auth=False, retry_safe=False
        )
        return DriveItem.from_json(json_body(response))

    async def cancel_upload_session(self, upload_url: str) -> None:
        """Cancel a session (DELETE). A session already gone counts as cancelled."""
        with contextlib.suppress(NotFound):
            await self.client.request("DELETE", upload_url, auth=False)


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
    return {"item": item, "deferCommit": new.defer_commit}
