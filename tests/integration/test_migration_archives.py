"""Small files imported from archives (ArchivedFiles.xml) by the emulator's Migration API,
checked through Graph, over HTTPS, with Azurite behind it. The packages and their zips are
written here from sp-dev-docs' pages (migration-content-package.md, "Archive small files for
performance"; migration-manifest.md, "ArchivedFiles.xml"), read as docs/emulator.md states."""

from __future__ import annotations

import base64
import hashlib
import uuid
import zipfile
from collections.abc import Callable, Iterator
from io import BytesIO
from typing import Any

import httpx
import pytest
from azure.storage.blob import ContainerClient

from sharelift.emulator.migration.archives import MAX_ARCHIVE_BYTES
from sharelift.emulator.migration.blobs import stream_blob
from sharelift.emulator.server import EmulatorServer
from support.emulator_http import graph_http
from support.migration import (
    TEAM_SITE,
    Package,
    PackageArchive,
    PackageFile,
    PackageFolder,
    Tamper,
    Target,
    children,
    package_for,
    quickxor_b64,
    sharepoint_token,
    submit,
    team_archive_library,
    upload,
    wait_for_end,
)

pytestmark = pytest.mark.slow
LARGEST_MEMBER = 102_383
"""The largest file whose AES-CBC encryption (PKCS7-padded) is less than 100 KB (102,400)."""


@pytest.fixture
def client(
    migration_emulator: EmulatorServer, http_client: Callable[..., httpx.Client]
) -> httpx.Client:
    return http_client(migration_emulator)


@pytest.fixture(scope="module")
def token(migration_emulator: EmulatorServer) -> str:
    return sharepoint_token(migration_emulator)


@pytest.fixture
def graph(
    migration_emulator: EmulatorServer, app_token: Callable[..., str]
) -> Iterator[httpx.Client]:
    info = migration_emulator.info
    with graph_http(info, app_token(migration_emulator), http2=False, timeout=30) as g:
        yield g


@pytest.fixture
def target(graph: httpx.Client) -> Target:
    return team_archive_library(graph)


def _folder(target: Target, label: str) -> PackageFolder:
    return PackageFolder(f"{label}-{uuid.uuid4().hex[:6]}", target.root_id)


def _run(
    client: httpx.Client,
    server: EmulatorServer,
    token: str,
    package: Package,
    tamper: Tamper | None = None,
) -> list[dict[str, str]]:
    job_id, _, _ = submit(client, server, token, package, tamper=tamper)
    return wait_for_end(client, server, token, job_id, TEAM_SITE)


def _errors(events: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """The JobErrors by the id of their item, each item at most once."""
    errors = [e for e in events if e["Event"] == "JobError"]
    by_id = {e["Id"]: e for e in errors}
    assert len(by_id) == len(errors), errors
    return by_id


def _names(graph: httpx.Client, target: Target, folder: PackageFolder) -> set[str]:
    return set(children(graph, target.drive_id, folder.name))


def test_archived_and_plain_files_import_alike(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = _folder(target, "Archived")
    plain = [
        PackageFile("plain.txt", b"plain bytes" * 300, folder.id),
        PackageFile("large-plain.bin", bytes(range(256)) * 800, folder.id),  # no 100 KB limit
    ]
    first = [
        PackageFile("a.txt", b"alpha" * 100, folder.id, modified=1_700_000_000.0),
        PackageFile("empty.txt", b"", folder.id),
        PackageFile("b.csv", bytes(range(256)) * 40, folder.id, author="2"),
    ]
    second = [
        PackageFile("c.txt", b"gamma", folder.id),
        PackageFile("largest.bin", bytes(n * 7 % 251 for n in range(LARGEST_MEMBER)), folder.id),
    ]
    package = package_for(
        target,
        [plain[0], *first, plain[1], *second],
        [folder],
        [PackageArchive("pack0.zip", first), PackageArchive("pack1.zip", second, stray=["x.dat"])],
    )
    reads: list[str] = []

    def counted(container: ContainerClient, name: str, *args: Any, **kwargs: Any) -> None:
        reads.append(name)
        stream_blob(container, name, *args, **kwargs)

    # The import worker runs in this process: its archive reads are counted here.
    monkeypatch.setattr("sharelift.emulator.migration.archives.stream_blob", counted)
    events = _run(client, migration_emulator, token, package)
    names = [e["Event"] for e in events]
    assert "JobError" not in names and "JobFatalError" not in names, events
    assert sorted(reads) == ["pack0.zip", "pack1.zip"]  # once per job, not once per member
    warnings = [e["Message"] for e in events if e["Event"] == "JobWarning"]
    assert "ArchivedFiles.xml: 'x.dat' of pack1.zip is the FileValue of no File" in warnings
    end = events[-1]
    every = [*plain, *first, *second]
    assert end["FilesCreated"] == str(len(every))
    assert end["BytesProcessed"] == str(sum(len(f.data) for f in every))

    listed = children(graph, target.drive_id, folder.name)
    assert set(listed) == {f.name for f in every}
    for f in every:
        item = listed[f.name]
        assert item["size"] == len(f.data), f.name
        assert item["file"]["hashes"]["quickXorHash"] == quickxor_b64(f.data), f.name
    a = listed["a.txt"]
    assert a["fileSystemInfo"]["lastModifiedDateTime"] == "2023-11-14T22:13:20Z"
    assert a["fileSystemInfo"]["createdDateTime"] == "2020-09-13T12:26:40Z"
    assert a["createdBy"]["user"]["email"] == "megan@contoso.com"
    assert listed["b.csv"]["createdBy"]["user"]["displayName"] == "System Account"
    ids = graph.get(
        f"/drives/{target.drive_id}/items/{a['id']}", params={"$select": "sharepointIds"}
    ).json()["sharepointIds"]
    assert ids["listItemUniqueId"] == first[0].id
    downloaded = graph.get(
        f"/drives/{target.drive_id}/items/{listed['b.csv']['id']}/content", follow_redirects=True
    )
    assert downloaded.content == first[2].data


def _unusable(case: str, archive: PackageArchive) -> Tamper | None:
    """A tamper that spoils `archive`'s blob as `case` says (None: ArchivedFiles.xml does)."""
    if case == "Checksum":
        archive.checksum = quickxor_b64(b"another archive")
        return None

    def tamper(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        if name != archive.name:
            return False
        if case == "oversized":
            upload(container, name, body + bytes(MAX_ARCHIVE_BYTES), key)
        elif case == "no snapshot":
            upload(container, name, body, key, snapshot=False)
        elif case == "MD5":
            upload(container, name, body, key, md5=bytes(16))
        return True  # "missing": not uploaded at all

    return tamper


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("Checksum", "does not match its Checksum"),
        ("missing", "does not exist"),
        ("no snapshot", "has no snapshot"),
        ("MD5", "does not match its MD5"),
        ("oversized", "more than 10485760"),
    ],
)
def test_an_unusable_archive_fails_each_of_its_files_and_only_them(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
    case: str,
    message: str,
) -> None:
    folder = _folder(target, "Spoilt")
    plain = PackageFile("plain.txt", b"fine", folder.id)
    good = PackageFile("good.txt", b"from the good archive", folder.id)
    spoilt = [PackageFile(f"s{n}.txt", b"spoilt %d" % n, folder.id) for n in range(3)]
    bad = PackageArchive("bad.zip", spoilt)
    tamper = _unusable(case, bad)
    package = package_for(
        target, [*spoilt, plain, good], [folder], [bad, PackageArchive("good.zip", [good])]
    )
    events = _run(client, migration_emulator, token, package, tamper)
    errors = _errors(events)
    assert set(errors) == {f.id for f in spoilt}
    for error in errors.values():
        assert error["ObjectType"] == "File"
        assert "archive 'bad.zip'" in error["Message"] and message in error["Message"]
    assert events[-1]["FilesCreated"] == "2" and events[-1]["TotalErrors"] == "3"
    assert _names(graph, target, folder) == {"plain.txt", "good.txt"}


def test_a_missing_corrupt_or_mismatched_member_fails_that_file_only(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = _folder(target, "Members")
    kept = PackageFile("kept.txt", b"kept", folder.id)
    missing = PackageFile("missing.txt", b"not zipped", folder.id)
    corrupt = PackageFile("corrupt.txt", b"flipped", folder.id)
    resized = PackageFile("resized.txt", b"twelve bytes", folder.id)
    rehashed = PackageFile("rehashed.txt", b"another MD5", folder.id)
    members = [kept, corrupt, resized, rehashed]
    archive = PackageArchive("pack.zip", members, left_out=[missing], corrupt=[corrupt])
    package = package_for(target, [*members, missing], [folder], [archive])

    def md5(data: bytes) -> bytes:
        return base64.b64encode(hashlib.md5(data).digest())  # noqa: S324

    def wrong_manifest(container: ContainerClient, name: str, body: bytes, key: bytes) -> bool:
        if name != "Manifest.xml":
            return False
        body = body.replace(b'FileSize="12"', b'FileSize="13"')
        body = body.replace(md5(rehashed.data), md5(b"something else"))
        upload(container, name, body, key)
        return True

    events = _run(client, migration_emulator, token, package, wrong_manifest)
    errors = _errors(events)
    assert set(errors) == {missing.id, corrupt.id, resized.id, rehashed.id}
    assert f"'{missing.file_value}' is not in archive 'pack.zip'" in errors[missing.id]["Message"]
    assert "is corrupt" in errors[corrupt.id]["Message"]
    assert "the manifest says 13" in errors[resized.id]["Message"]
    assert "MD5Hash" in errors[rehashed.id]["Message"]
    assert events[-1]["FilesCreated"] == "1"
    assert _names(graph, target, folder) == {"kept.txt"}


def test_a_member_of_100_kb_or_more_encrypted_fails_that_file(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = _folder(target, "Sizes")
    largest = PackageFile("largest.bin", b"l" * LARGEST_MEMBER, folder.id)
    too_large = PackageFile("too-large.bin", b"t" * (LARGEST_MEMBER + 1), folder.id)
    package = package_for(
        target, [largest, too_large], [folder], [PackageArchive("pack.zip", [largest, too_large])]
    )
    events = _run(client, migration_emulator, token, package)
    errors = _errors(events)
    assert list(errors) == [too_large.id]
    assert "102400 encrypted" in errors[too_large.id]["Message"]
    assert _names(graph, target, folder) == {"largest.bin"}


def test_three_archives_are_a_fatal_error(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = _folder(target, "Three")
    files = [PackageFile(f"{n}.txt", b"%d" % n, folder.id) for n in range(3)]
    package = package_for(
        target, files, [folder], [PackageArchive(f"p{n}.zip", [f]) for n, f in enumerate(files)]
    )
    events = _run(client, migration_emulator, token, package)
    fatal = [e for e in events if e["Event"] == "JobFatalError"]
    assert len(fatal) == 1 and "3 archives" in fatal[0]["Message"]
    assert events[-1]["Event"] == "JobEnd" and events[-1]["FilesCreated"] == "0"
    assert graph.get(f"/drives/{target.drive_id}/root:/{folder.name}").status_code == 404


def test_a_deflated_member_imports(
    migration_emulator: EmulatorServer,
    client: httpx.Client,
    token: str,
    graph: httpx.Client,
    target: Target,
) -> None:
    folder = _folder(target, "Deflated")
    text = PackageFile("notes.txt", b"the same line, again and again\n" * 2000, folder.id)
    archive = PackageArchive("pack.zip", [text], compression=zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(BytesIO(archive.zip_bytes())) as zipped:
        info = zipped.getinfo(text.file_value)
        assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size < 2000
    events = _run(
        client, migration_emulator, token, package_for(target, [text], [folder], [archive])
    )
    assert "JobError" not in [e["Event"] for e in events]
    item = children(graph, target.drive_id, folder.name)["notes.txt"]
    assert item["size"] == len(text.data)
    assert item["file"]["hashes"]["quickXorHash"] == quickxor_b64(text.data)
