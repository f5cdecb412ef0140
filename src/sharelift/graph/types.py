"""What Graph returns, parsed from its JSON into frozen dataclasses.

Raw JSON never leaves `sharelift.graph`: these parsed models are what the rest of sharelift
sees. Field names are Python's; the Graph property each comes from is in the parser. Unknown
properties are ignored, missing optional ones are None. A response missing a property the model
cannot do without raises `MalformedResponse`.

Timestamps are timezone-aware datetimes. Graph writes UTC with `Z`, with anything from zero to
seven fractional digits; offsets are accepted too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sharelift.graph.errors import MalformedResponse

_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}(?::\d{2})?)"
    r"(?:\.(?P<fraction>\d+))?(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?"
)


def parse_datetime(value: str) -> datetime:
    """An aware datetime from an ISO 8601 timestamp as Graph writes it.

    `Z` or an offset; fractional seconds of any precision (kept to the microsecond, truncated);
    a timestamp without zone is taken as UTC. Raises ValueError for anything else.
    """
    match = _TIMESTAMP.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 timestamp: {value!r}")
    clock = match["time"] if match["time"].count(":") == 2 else match["time"] + ":00"
    parsed = datetime.fromisoformat(f"{match['date']}T{clock}")
    fraction = match["fraction"]
    if fraction:
        parsed = parsed.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    zone = match["zone"]
    if zone is None or zone in "Zz":
        return parsed.replace(tzinfo=UTC)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return parsed.replace(tzinfo=timezone(sign * offset))


def format_datetime(value: datetime) -> str:
    """A timestamp for Graph: UTC, `Z`, milliseconds only when there are any.

    Raises ValueError for a naive datetime: a file time without zone is ambiguous.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a naive datetime has no defined instant; attach a timezone")
    utc = value.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


# -- small helpers -------------------------------------------------------------------------


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, Mapping) else None


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(data: Mapping[str, Any], key: str) -> datetime | None:
    value = data.get(key)
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        raise MalformedResponse(f"Graph returned an unreadable {key}: {value!r}") from None


def _required(data: Mapping[str, Any], key: str, kind: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedResponse(f"Graph returned a {kind} without {key}")
    return value


def _mapping(data: Any, kind: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise MalformedResponse(f"Graph returned a {kind} that is not a JSON object")
    return data


# -- driveItem -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParentReference:
    """driveItem.parentReference: where an item lives. `path` is `/drive/root:/a/b` or None."""

    drive_id: str | None
    drive_type: str | None
    id: str | None
    path: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ParentReference:
        return cls(
            drive_id=_str(data, "driveId"),
            drive_type=_str(data, "driveType"),
            id=_str(data, "id"),
            path=_str(data, "path"),
        )


@dataclass(frozen=True, slots=True)
class FileFacet:
    """driveItem.file. `quick_xor_hash` is base64 as Graph sends it (ODB/SPO have no other)."""

    mime_type: str | None
    quick_xor_hash: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileFacet:
        hashes = _obj(data, "hashes") or {}
        return cls(mime_type=_str(data, "mimeType"), quick_xor_hash=_str(hashes, "quickXorHash"))


@dataclass(frozen=True, slots=True)
class FileSystemInfo:
    """The client-side times of an item, as the file system on the source reported them."""

    created: datetime | None
    last_modified: datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileSystemInfo:
        return cls(
            created=_time(data, "createdDateTime"),
            last_modified=_time(data, "lastModifiedDateTime"),
        )

    def to_json(self) -> dict[str, str]:
        body: dict[str, str] = {}
        if self.created is not None:
            body["createdDateTime"] = format_datetime(self.created)
        if self.last_modified is not None:
            body["lastModifiedDateTime"] = format_datetime(self.last_modified)
        return body


@dataclass(frozen=True, slots=True)
class DriveItem:
    """A file or folder in a drive (driveItem).

    `folder_child_count` is None for files; `file` is None for folders. `deleted` is True for
    the tombstones delta returns; `is_root` for the drive's root folder. `ctag` is often
    absent for folders on OneDrive for Business and SharePoint.
    """

    id: str
    name: str | None
    size: int | None
    etag: str | None
    ctag: str | None
    parent: ParentReference | None
    file: FileFacet | None
    folder_child_count: int | None
    file_system_info: FileSystemInfo | None
    created: datetime | None
    last_modified: datetime | None
    web_url: str | None
    deleted: bool = False
    is_root: bool = False

    @property
    def is_folder(self) -> bool:
        return self.folder_child_count is not None or self.is_root

    @property
    def is_file(self) -> bool:
        return self.file is not None

    @property
    def quick_xor_hash(self) -> str | None:
        return self.file.quick_xor_hash if self.file is not None else None

    @classmethod
    def from_json(cls, data: Any) -> DriveItem:
        item = _mapping(data, "driveItem")
        parent = _obj(item, "parentReference")
        file = _obj(item, "file")
        folder = _obj(item, "folder")
        fsi = _obj(item, "fileSystemInfo")
        return cls(
            id=_required(item, "id", "driveItem"),
            name=_str(item, "name"),
            size=_int(item, "size"),
            etag=_str(item, "eTag"),
            ctag=_str(item, "cTag"),
            parent=ParentReference.from_json(parent) if parent is not None else None,
            file=FileFacet.from_json(file) if file is not None else None,
            folder_child_count=(_int(folder, "childCount") or 0) if folder is not None else None,
            file_system_info=FileSystemInfo.from_json(fsi) if fsi is not None else None,
            created=_time(item, "createdDateTime"),
            last_modified=_time(item, "lastModifiedDateTime"),
            web_url=_str(item, "webUrl"),
            deleted=_obj(item, "deleted") is not None,
            is_root=_obj(item, "root") is not None,
        )


# -- drives and sites ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quota:
    """drive.quota in bytes; `state` is normal, nearing, critical or exceeded."""

    total: int | None
    used: int | None
    remaining: int | None
    deleted: int | None
    state: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Quota:
        return cls(
            total=_int(data, "total"),
            used=_int(data, "used"),
            remaining=_int(data, "remaining"),
            deleted=_int(data, "deleted"),
            state=_str(data, "state"),
        )


@dataclass(frozen=True, slots=True)
class Owner:
    """drive.owner: the user or group the drive belongs to."""

    id: str | None
    display_name: str | None
    email: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Owner:
        identity = _obj(data, "user") or _obj(data, "group") or _obj(data, "application") or {}
        return cls(
            id=_str(identity, "id"),
            display_name=_str(identity, "displayName"),
            email=_str(identity, "email"),
        )


@dataclass(frozen=True, slots=True)
class Drive:
    """A document library or OneDrive. `drive_type`: business, documentLibrary or personal."""

    id: str
    drive_type: str | None
    name: str | None
    web_url: str | None
    quota: Quota | None
    owner: Owner | None

    @classmethod
    def from_json(cls, data: Any) -> Drive:
        drive = _mapping(data, "drive")
        quota = _obj(drive, "quota")
        owner = _obj(drive, "owner")
        return cls(
            id=_required(drive, "id", "drive"),
            drive_type=_str(drive, "driveType"),
            name=_str(drive, "name"),
            web_url=_str(drive, "webUrl"),
            quota=Quota.from_json(quota) if quota is not None else None,
            owner=Owner.from_json(owner) if owner is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Site:
    """A SharePoint site; `id` is `hostname,siteCollectionGuid,webGuid`."""

    id: str
    web_url: str | None
    display_name: str | None
    name: str | None

    @classmethod
    def from_json(cls, data: Any) -> Site:
        site = _mapping(data, "site")
        return cls(
            id=_required(site, "id", "site"),
            web_url=_str(site, "webUrl"),
            display_name=_str(site, "displayName"),
            name=_str(site, "name"),
        )


# -- uploads and delta ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UploadSession:
    """An upload session, as created or as its status reports it.

    `upload_url` is pre-authenticated (a credential): it is left out of repr and must not be
    logged. It is None in a status response, which carries only the ranges and expiry.
    `next_expected_ranges` are Graph's strings: "start-end" or "start-".
    """

    upload_url: str | None = field(repr=False)
    expiration: datetime | None
    next_expected_ranges: tuple[str, ...]

    @property
    def next_offset(self) -> int | None:
        """The first byte the session still expects, or None when it named no range."""
        if not self.next_expected_ranges:
            return None
        start = self.next_expected_ranges[0].split("-", 1)[0]
        try:
            return int(start)
        except ValueError:
            raise MalformedResponse(
                f"Graph returned an unreadable range: {self.next_expected_ranges[0]!r}"
            ) from None

    @classmethod
    def from_json(cls, data: Any) -> UploadSession:
        session = _mapping(data, "upload session")
        ranges = session.get("nextExpectedRanges")
        return cls(
            upload_url=_str(session, "uploadUrl"),
            expiration=_time(session, "expirationDateTime"),
            next_expected_ranges=tuple(r for r in ranges if isinstance(r, str))
            if isinstance(ranges, list)
            else (),
        )


@dataclass(frozen=True, slots=True)
class DriveItemVersion:
    """One version of a file (https://learn.microsoft.com/graph/api/resources/driveitemversion).
    `id` is SharePoint's version label ("1.0", "2.0", ...); the current version comes first
    in a listing."""

    id: str
    modified: datetime | None
    size: int | None

    @classmethod
    def from_json(cls, data: Any) -> DriveItemVersion:
        version = _mapping(data, "version")
        return cls(
            id=_required(version, "id", "version"),
            modified=_time(version, "lastModifiedDateTime"),
            size=_int(version, "size"),
        )


@dataclass(frozen=True, slots=True)
class DeltaPage:
    """One page of a delta enumeration: items, and either the next page or the new deltaLink."""

    items: tuple[DriveItem, ...]
    next_link: str | None
    delta_link: str | None

    @classmethod
    def from_json(cls, data: Any) -> DeltaPage:
        page = _mapping(data, "delta page")
        values = page.get("value")
        if not isinstance(values, list):
            raise MalformedResponse("Graph returned a delta page without value")
        return cls(
            items=tuple(DriveItem.from_json(v) for v in values),
            next_link=_str(page, "@odata.nextLink"),
            delta_link=_str(page, "@odata.deltaLink"),
        )
