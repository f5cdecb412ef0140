"""Small files packed into zip archives for the Migration API (ArchivedFiles.xml): which files
go, how they are grouped within the page's limits, and the archive and its XML as written."""

from __future__ import annotations

import base64
import hashlib
import io
import xml.etree.ElementTree as ET
import zipfile

from hypothesis import given
from hypothesis import strategies as st

from sharelift.migration_api import archive, package
from sharelift.migration_api.crypto import encrypted_size
from sharelift.quickxorhash import QuickXorHash


def test_a_member_stays_under_100_kb_once_encrypted() -> None:
    assert archive.fits(0)
    assert archive.fits(99_983)  # 99,984 bytes once padded
    assert not archive.fits(99_984)  # 100,000 bytes once padded: not "less than"
    assert not archive.fits(5 * 1024 * 1024)


def _size(names: list[str], sizes: dict[str, int]) -> int:
    writer = archive.ArchiveWriter()
    for name in names:
        writer.add(name, b"x" * sizes[name])
    return len(writer.finish())


@given(st.lists(st.integers(min_value=0, max_value=99_983), max_size=400))
def test_groups_keep_the_limits_and_the_order(sizes: list[int]) -> None:
    files = {f"{i:04}.dat": size for i, size in enumerate(sizes)}
    groups = archive.group(list(files.items()))
    assert len(groups) <= archive.ARCHIVES_PER_PACKAGE
    flat = [name for names in groups for name in names]
    assert flat == sorted(flat), "archives are filled in name order"
    assert len(set(flat)) == len(flat)
    assert all(names for names in groups)
    if len(groups) < archive.ARCHIVES_PER_PACKAGE:
        assert len(flat) == len(files), "a file was left out with room to spare"


def test_a_full_archive_is_within_10_mb_and_the_rest_go_alone() -> None:
    sizes = {f"{i:05}.dat": 99_000 for i in range(250)}  # 24.75 MB: more than two archives hold
    groups = archive.group(list(sizes.items()))
    assert len(groups) == 2
    for names in groups:
        stored = encrypted_size(_size(names, sizes))
        assert stored <= archive.ARCHIVE_BYTES
        assert stored + 99_000 > archive.ARCHIVE_BYTES - 200, "an archive was not filled"
    assert sum(map(len, groups)) < len(sizes)


def test_the_archive_is_a_stored_zip_the_same_every_time() -> None:
    members = {"b.dat": b"second" * 100, "a.dat": b"", "c.dat": bytes(range(256))}

    def build() -> tuple[bytes, dict[str, archive.Member]]:
        writer = archive.ArchiveWriter()
        packed = {name: writer.add(name, data) for name, data in sorted(members.items())}
        return writer.finish(), packed

    data, packed = build()
    assert build()[0] == data, "the same files made another archive"
    with zipfile.ZipFile(io.BytesIO(data)) as opened:
        assert opened.namelist() == ["a.dat", "b.dat", "c.dat"]
        for info in opened.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert opened.read(info) == members[info.filename]
    for name, content in members.items():
        hasher = QuickXorHash()
        hasher.update(content)
        assert packed[name] == archive.Member(
            base64.b64encode(hasher.digest()).decode(),
            base64.b64encode(hashlib.md5(content).digest()).decode(),  # noqa: S324 (the service's integrity check)
            len(content),
        )


def test_archived_files_xml_lists_each_archive_and_its_files() -> None:
    archives = [
        archive.Archive("archive-0.zip", "AAAA=", ("a.dat", "b&c.dat")),
        archive.Archive("archive-1.zip", "BBBB=", ("d.dat",)),
    ]
    root = ET.fromstring("".join(package.archived_files(archives)).encode())  # noqa: S314 (our own output)
    assert root.tag == "ArchivedFiles"
    assert [(a.get("Name"), a.get("Checksum"), [f.get("FileValue") for f in a]) for a in root] == [
        ("archive-0.zip", "AAAA=", ["a.dat", "b&c.dat"]),
        ("archive-1.zip", "BBBB=", ["d.dat"]),
    ]
