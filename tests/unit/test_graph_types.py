"""Parsing Graph's JSON: timestamps, driveItems, drives, sites, upload sessions, delta pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sharelift.graph.errors import MalformedResponse
from sharelift.graph.types import (
    DeltaPage,
    Drive,
    DriveItem,
    FileSystemInfo,
    Site,
    UploadSession,
    format_datetime,
    parse_datetime,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T12:34:56Z", datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-01T12:34:56.1Z", datetime(2024, 3, 1, 12, 34, 56, 100000, tzinfo=UTC)),
        ("2024-03-01T12:34:56.123Z", datetime(2024, 3, 1, 12, 34, 56, 123000, tzinfo=UTC)),
        ("2024-03-01T12:34:56.1234567Z", datetime(2024, 3, 1, 12, 34, 56, 123456, tzinfo=UTC)),
        ("2024-03-01T12:34:56.123456789z", datetime(2024, 3, 1, 12, 34, 56, 123456, tzinfo=UTC)),
        ("2024-03-01T12:34:56", datetime(2024, 3, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-03-01T12:34Z", datetime(2024, 3, 1, 12, 34, tzinfo=UTC)),
        (
            "2024-03-01T12:34:56+02:00",
            datetime(2024, 3, 1, 12, 34, 56, tzinfo=timezone(timedelta(hours=2))),
        ),
        (
            "2024-03-01T12:34:56.5-0530",
            datetime(
                2024, 3, 1, 12, 34, 56, 500000, tzinfo=timezone(-timedelta(hours=5, minutes=30))
            ),
        ),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("text", ["", "yesterday", "2024-03-01", "2024-03-01T12:34:56+2"])
def test_parse_datetime_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_datetime(text)


def test_format_datetime_writes_utc_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_datetime(datetime(2024, 3, 1, 14, 0, tzinfo=plus_two)) == "2024-03-01T12:00:00Z"
    assert (
        format_datetime(datetime(2024, 3, 1, 12, 0, 0, 123999, tzinfo=UTC))
        == "2024-03-01T12:00:00.123Z"
    )
    with pytest.raises(ValueError, match="naive"):
        format_datetime(datetime(2024, 3, 1))


FILE_JSON = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#drives('b!x')/items/$entity",
    "id": "01ABC",
    "name": "report #1 + 100%.docx",
    "size": 12345,
    "eTag": '"{A},2"',
    "cTag": '"c:{A},3"',
    "createdDateTime": "2024-01-02T03:04:05Z",
    "lastModifiedDateTime": "2024-01-02T03:04:06.789Z",
    "webUrl": "https://contoso.sharepoint.com/sites/s/Shared%20Documents/report.docx",
    "parentReference": {
        "driveId": "b!x",
        "driveType": "documentLibrary",
        "id": "01PARENT",
        "path": "/drive/root:/Reports",
    },
    "file": {
        "mimeType": "application/msword",
        "hashes": {"quickXorHash": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="},
    },
    "fileSystemInfo": {
        "createdDateTime": "2020-05-06T07:08:09Z",
        "lastModifiedDateTime": "2021-05-06T07:08:09.5Z",
    },
    "unknownFacet": {"ignored": True},
}


def test_a_file_item() -> None:
    item = DriveItem.from_json(FILE_JSON)
    assert (item.id, item.name, item.size) == ("01ABC", "report #1 + 100%.docx", 12345)
    assert (item.etag, item.ctag) == ('"{A},2"', '"c:{A},3"')
    assert item.is_file and not item.is_folder and not item.deleted and not item.is_root
    assert item.quick_xor_hash == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    assert item.file is not None and item.file.mime_type == "application/msword"
    assert item.parent is not None
    assert (item.parent.drive_id, item.parent.drive_type) == ("b!x", "documentLibrary")
    assert (item.parent.id, item.parent.path) == ("01PARENT", "/drive/root:/Reports")
    assert item.file_system_info == FileSystemInfo(
        created=datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC),
        last_modified=datetime(2021, 5, 6, 7, 8, 9, 500000, tzinfo=UTC),
    )
    assert item.last_modified == datetime(2024, 1, 2, 3, 4, 6, 789000, tzinfo=UTC)
    assert item.web_url is not None and item.web_url.endswith("report.docx")


def test_folders_root_and_tombstones() -> None:
    folder = DriveItem.from_json({"id": "F", "name": "Docs", "folder": {"childCount": 3}})
    assert folder.is_folder and not folder.is_file and folder.folder_child_count == 3
    assert folder.quick_xor_hash is None and folder.ctag is None
    empty = DriveItem.from_json({"id": "E", "folder": {}})
    assert empty.folder_child_count == 0
    root = DriveItem.from_json({"id": "R", "name": "root", "root": {}, "folder": {}})
    assert root.is_root and root.is_folder
    gone = DriveItem.from_json({"id": "G", "deleted": {"state": "deleted"}})
    assert gone.deleted and gone.name is None


@pytest.mark.parametrize(
    "data", [{}, {"id": ""}, {"id": 5}, [], "x", {"id": "1", "createdDateTime": "soon"}]
)
def test_malformed_items(data: object) -> None:
    with pytest.raises(MalformedResponse):
        DriveItem.from_json(data)


def test_drive_and_site() -> None:
    drive = Drive.from_json(
        {
            "id": "b!abc",
            "driveType": "business",
            "name": "OneDrive",
            "webUrl": "https://contoso-my.sharepoint.com/personal/ada_contoso_com/Documents",
            "quota": {"total": 100, "used": 40, "remaining": 60, "deleted": 1, "state": "normal"},
            "owner": {"user": {"id": "u1", "displayName": "Ada", "email": "ada@contoso.com"}},
        }
    )
    assert (drive.id, drive.drive_type, drive.name) == ("b!abc", "business", "OneDrive")
    assert drive.quota is not None and (drive.quota.total, drive.quota.remaining) == (100, 60)
    assert drive.owner is not None and drive.owner.display_name == "Ada"
    group_drive = Drive.from_json({"id": "b!g", "owner": {"group": {"id": "g1"}}})
    assert group_drive.owner is not None and group_drive.owner.id == "g1"
    assert group_drive.quota is None
    site = Site.from_json(
        {
            "id": "contoso.sharepoint.com,1111,2222",
            "webUrl": "https://contoso.sharepoint.com/sites/Sample",
            "displayName": "Sample",
            "name": "Sample",
        }
    )
    assert site.id == "contoso.sharepoint.com,1111,2222" and site.display_name == "Sample"
    with pytest.raises(MalformedResponse):
        Site.from_json({"webUrl": "x"})


def test_upload_session_hides_its_url() -> None:
    session = UploadSession.from_json(
        {
            "uploadUrl": "https://contoso.sharepoint.com/upload?tempauth=SECRET",
            "expirationDateTime": "2026-11-23T14:00:00.0000000Z",
            "nextExpectedRanges": ["655360-", "ignored"],
        }
    )
    assert session.upload_url is not None and "SECRET" in session.upload_url
    assert "SECRET" not in repr(session)
    assert session.expiration == datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    assert session.next_offset == 655360
    status = UploadSession.from_json({"nextExpectedRanges": ["0-999", "2000-"]})
    assert status.upload_url is None and status.next_offset == 0
    assert UploadSession.from_json({}).next_offset is None
    with pytest.raises(MalformedResponse):
        _ = UploadSession.from_json({"nextExpectedRanges": ["x-"]}).next_offset


def test_delta_pages() -> None:
    middle = DeltaPage.from_json(
        {"value": [FILE_JSON, {"id": "G", "deleted": {}}], "@odata.nextLink": "https://n"}
    )
    assert [i.id for i in middle.items] == ["01ABC", "G"]
    assert middle.next_link == "https://n" and middle.delta_link is None
    last = DeltaPage.from_json({"value": [], "@odata.deltaLink": "https://d?token=t"})
    assert last.delta_link == "https://d?token=t" and last.items == ()
    with pytest.raises(MalformedResponse):
        DeltaPage.from_json({"@odata.deltaLink": "x"})


def test_file_system_info_to_json_omits_what_is_unknown() -> None:
    when = datetime(2020, 1, 1, tzinfo=UTC)
    assert FileSystemInfo(created=when, last_modified=None).to_json() == {
        "createdDateTime": "2020-01-01T00:00:00Z"
    }
