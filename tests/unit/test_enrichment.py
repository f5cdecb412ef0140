"""SharePoint's rewrite of Office files (the emulator's model): which parts of an OOXML package
change and which keep their bytes, and the property stream of a binary (compound) file."""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from sharelift.emulator.enrichment import legacy, ooxml
from support.office import compound_file, doc_summary_stream, ooxml_package, parts_of

CTID = "0x010100" + "AB" * 16
CONTEXT = ooxml.LibraryContext(CTID)
SHAREPOINT_PARTS = {
    "[Content_Types].xml",
    "docProps/core.xml",
    "docProps/custom.xml",
    "_rels/.rels",
}


def _rewrite(tmp_path: Path, data: bytes) -> bytes:
    source, target = tmp_path / "in", tmp_path / "out"
    source.write_bytes(data)
    ooxml.rewrite_package(source, target, CONTEXT)
    return target.read_bytes()


def _xml(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 — test data made here


@pytest.mark.parametrize(
    ("kind", "main_rels"),
    [
        ("docx", "word/_rels/document.xml.rels"),
        ("xlsx", "xl/_rels/workbook.xml.rels"),
        ("pptx", "ppt/_rels/presentation.xml.rels"),
    ],
)
def test_only_metadata_parts_change(tmp_path: Path, kind: str, main_rels: str) -> None:
    sent = ooxml_package(kind)
    stored = _rewrite(tmp_path, sent)
    before, after = parts_of(sent), parts_of(stored)
    assert stored != sent
    rewritten = SHAREPOINT_PARTS | {main_rels}
    for name, data in before.items():
        if name not in rewritten:
            assert after[name] == data, f"{name} changed"
    added = sorted(set(after) - set(before))
    assert added == [
        "customXml/_rels/item1.xml.rels",
        "customXml/_rels/item2.xml.rels",
        "customXml/_rels/item3.xml.rels",
        "customXml/item1.xml",
        "customXml/item2.xml",
        "customXml/item3.xml",
        "customXml/itemProps1.xml",
        "customXml/itemProps2.xml",
        "customXml/itemProps3.xml",
        "docProps/custom.xml",
    ]
    # The library's content type id is demoted into the custom properties...
    custom = _xml(after["docProps/custom.xml"])
    (prop,) = [p for p in custom if p.get("name") == "ContentTypeId"]
    assert prop[0].text == CTID
    # ...the main part points at the new items, the package at the custom properties...
    targets = {r.get("Target") for r in _xml(after[main_rels])}
    assert {"../customXml/item1.xml", "../customXml/item2.xml", "../customXml/item3.xml"} <= targets
    assert "media/image1.png" in targets
    package_rels = {r.get("Target") for r in _xml(after["_rels/.rels"])}
    assert "docProps/custom.xml" in package_rels
    overrides = {
        o.get("PartName"): o.get("ContentType") for o in _xml(after["[Content_Types].xml"])
    }
    assert overrides["/customXml/itemProps1.xml"] == ooxml.CT_CUSTOM_XML_PROPS
    assert overrides["/docProps/custom.xml"] == ooxml.CT_CUSTOM_PROPERTIES
    # ...and the core properties are written back with the same values.
    assert after["docProps/core.xml"] != before["docProps/core.xml"]
    assert ET.tostring(_xml(after["docProps/core.xml"])) == ET.tostring(
        _xml(before["docProps/core.xml"])
    )


def test_the_container_is_written_anew(tmp_path: Path) -> None:
    stored = _rewrite(tmp_path, ooxml_package())

    with zipfile.ZipFile(io.BytesIO(stored)) as z:
        infos = z.infolist()
    assert infos[0].filename == "[Content_Types].xml"
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_existing_custom_properties_are_kept(tmp_path: Path) -> None:
    sent = ooxml_package(custom=True)
    after = parts_of(_rewrite(tmp_path, sent))
    props = {p.get("name"): p for p in _xml(after["docProps/custom.xml"])}
    assert props["Client"][0].text == "ACME & Co"
    assert props["ContentTypeId"][0].text == CTID
    assert len({p.get("pid") for p in props.values()}) == 2
    # docProps/custom.xml was there: the package relationships stay as they were
    assert after["_rels/.rels"] == parts_of(sent)["_rels/.rels"]


def test_each_commit_stores_different_bytes_and_no_duplicate_items(tmp_path: Path) -> None:
    once = _rewrite(tmp_path, ooxml_package())
    twice = _rewrite(tmp_path, once)
    assert twice != once
    first, second = parts_of(once), parts_of(twice)
    assert set(first) == set(second)  # SharePoint's items are replaced, not added again
    assert first["customXml/itemProps1.xml"] != second["customXml/itemProps1.xml"]  # new itemID
    assert first["word/document.xml"] == second["word/document.xml"]


@pytest.mark.parametrize(
    "data",
    [
        b"not a zip at all",
        b"PK\x03\x04 truncated",
        b"",
    ],
)
def test_a_file_that_is_not_a_package_is_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(ooxml.NotAPackage):
        _rewrite(tmp_path, data)
    assert not (tmp_path / "out").exists()


def test_a_zip_that_is_not_an_office_package_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("readme.txt", "just a zip")
    with pytest.raises(ooxml.NotAPackage):
        _rewrite(tmp_path, buffer.getvalue())


# --- compound files ---------------------------------------------------------------------------


def _streams(data: bytes) -> dict[str, bytes]:
    cfb = legacy._CompoundFile.read(data)
    out = {}
    for index, content in cfb.streams.items():
        entry = cfb.entries[index]
        length = struct.unpack_from("<H", entry, 64)[0]
        out[entry[: length - 2].decode("utf-16-le")] = content
    return out


def test_the_reader_follows_a_hand_laid_compound_file() -> None:
    word = bytes(range(256)) * 20
    assert _streams(compound_file(word)) == {
        "WordDocument": word,
        legacy.DOC_SUMMARY_STREAM: doc_summary_stream(),
    }


def test_a_binary_file_gets_the_content_type_in_its_user_defined_properties(
    tmp_path: Path,
) -> None:
    word = bytes(range(256)) * 40
    sent = compound_file(word)
    source, target = tmp_path / "in.doc", tmp_path / "out.doc"
    source.write_bytes(sent)
    legacy.rewrite_compound_file(source, target, CTID)
    stored = target.read_bytes()
    assert stored != sent and len(stored) % 512 == 0 and len(stored) >= len(sent)
    streams = _streams(stored)
    assert streams["WordDocument"] == word  # the document itself keeps its bytes
    summary = streams[legacy.DOC_SUMMARY_STREAM]
    old = doc_summary_stream()
    count = struct.unpack_from("<I", summary, 24)[0]
    assert count == 2
    first, at = struct.unpack_from("<16sI", summary, 28)
    assert first == old[28:44]
    assert summary[at : at + len(old) - 48] == old[48:]  # the built-in section is kept
    assert struct.unpack_from("<16s", summary, 48)[0] == legacy.USER_DEFINED_FMTID
    assert "ContentTypeId".encode("utf-16-le") in summary
    assert CTID.encode("utf-16-le") in summary
    # Once more: ContentTypeId is replaced, not added twice.
    source.write_bytes(stored)
    legacy.rewrite_compound_file(source, target, CTID)
    again = _streams(target.read_bytes())[legacy.DOC_SUMMARY_STREAM]
    assert again.count("ContentTypeId".encode("utf-16-le")) == 1
    assert again == summary


@pytest.mark.parametrize("data", [b"plain text, not OLE", compound_file(b"x" * 4096)[:1000]])
def test_a_file_that_is_not_a_compound_file_is_refused(tmp_path: Path, data: bytes) -> None:
    source, target = tmp_path / "in.doc", tmp_path / "out.doc"
    source.write_bytes(data)
    with pytest.raises(legacy.NotACompoundFile):
        legacy.rewrite_compound_file(source, target, CTID)
    assert not target.exists()
