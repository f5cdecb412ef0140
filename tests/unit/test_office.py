"""The proof that an Office Open XML file arrived intact although a library rewrote its metadata:
what SharePoint writes is allowed, anything else that changes is caught."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable

import pytest

from sharelift.emulator.samples import office_file
from sharelift.office import PackageMismatch, office_kind, prove_package

_SP_PROPS = "http://schemas.microsoft.com/office/2006/metadata/properties"
_SP_CT = "http://schemas.microsoft.com/office/2006/metadata/contentType"
_CUSTOM_XML = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/customXml"
_CUSTOM_PROPS = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties"
)
_ITEM_PROPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/customXmlProps"


def read_parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def write_parts(parts: dict[str, bytes], *, compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name in sorted(parts, reverse=True):  # another order than the source's
            zf.writestr(name, parts[name])
    return out.getvalue()


def main_rels(parts: dict[str, bytes]) -> str:
    return next(n for n in parts if "/_rels/" in n and not n.startswith("customXml"))


def library_rewrite(data: bytes) -> bytes:
    """What the sources say a library does to a package: SharePoint's customXml items with
    their properties parts, docProps/custom.xml with the ContentTypeId, core.xml written
    back, relationships and content types for them; the container written anew."""
    parts = read_parts(data)
    free = [n for n in range(1, 9) if f"customXml/item{n}.xml" not in parts][:2]
    first, second = free
    parts[f"customXml/item{first}.xml"] = f'<p:properties xmlns:p="{_SP_PROPS}"/>'.encode()
    parts[f"customXml/item{second}.xml"] = f'<ct:contentTypeSchema xmlns:ct="{_SP_CT}"/>'.encode()
    for n in free:
        parts[f"customXml/itemProps{n}.xml"] = b"<ds:datastoreItem/>"
        parts[f"customXml/_rels/item{n}.xml.rels"] = (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'relationships"><Relationship Id="rId1" Type="{_ITEM_PROPS}" '
            f'Target="itemProps{n}.xml"/></Relationships>'
        ).encode()
    parts["docProps/custom.xml"] = b"<Properties><property name='ContentTypeId'/></Properties>"
    parts["docProps/core.xml"] = parts["docProps/core.xml"].replace(b"><", b">\n<")
    rels_name = main_rels(parts)
    extra = "".join(
        f'<Relationship Id="rId9{n}" Type="{_CUSTOM_XML}" Target="../customXml/item{n}.xml"/>'
        for n in free
    )
    parts[rels_name] = parts[rels_name].replace(
        b"</Relationships>", extra.encode() + b"</Relationships>"
    )
    parts["_rels/.rels"] = parts["_rels/.rels"].replace(
        b"</Relationships>",
        f'<Relationship Id="rId99" Type="{_CUSTOM_PROPS}" Target="docProps/custom.xml"/>'.encode()
        + b"</Relationships>",
    )
    parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
        b"</Types>",
        b'<Override PartName="/customXml/itemProps1.xml" ContentType="application/vnd.openxml'
        b'formats-officedocument.customXmlProperties+xml"/><Override PartName="/docProps/'
        b'custom.xml" ContentType="application/vnd.openxmlformats-officedocument.custom-'
        b'properties+xml"/></Types>',
    )
    return write_parts(parts, compression=zipfile.ZIP_DEFLATED)


def prove(source: bytes, stored: bytes) -> None:
    prove_package(io.BytesIO(source), io.BytesIO(stored))


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
def test_what_a_library_writes_is_proved_as_metadata_only(kind: str) -> None:
    source = office_file(kind, seed=3, media_bytes=5_000)
    stored = library_rewrite(source)
    assert stored != source
    prove(source, stored)
    prove(source, write_parts(read_parts(source)))  # only the container changed


def change(part: str, how: Callable[[bytes], bytes]) -> Callable[[dict[str, bytes]], None]:
    def apply(parts: dict[str, bytes]) -> None:
        parts[part] = how(parts[part])

    return apply


def drop(part: str) -> Callable[[dict[str, bytes]], None]:
    return lambda parts: parts.pop(part)


def replace(part: str, old: bytes, new: bytes) -> Callable[[dict[str, bytes]], None]:
    return change(part, lambda data: data.replace(old, new, 1))


TAMPERING: dict[str, tuple[Callable[[dict[str, bytes]], None], str]] = {
    "text": (replace("word/document.xml", b"draft", b"DRAFT"), "word/document.xml differs"),
    "one byte of an image": (
        change("word/media/image1.png", lambda d: d[:-1] + bytes([d[-1] ^ 1])),
        "word/media/image1.png differs",
    ),
    "a part lost": (drop("word/styles.xml"), "word/styles.xml is missing"),
    "a part added": (lambda p: p.__setitem__("word/extra.xml", b"<x/>"), "word/extra.xml"),
    "extended properties": (
        replace("docProps/app.xml", b"Contoso", b"Fabrikam"),
        "docProps/app.xml differs",
    ),
    "a relationship retargeted": (
        replace("word/_rels/document.xml.rels", b"styles.xml", b"media/image1.png"),
        "relationships in word/_rels/document.xml.rels differ",
    ),
    "a content type": (
        replace("[Content_Types].xml", b'ContentType="image/png"', b'ContentType="image/gif"'),
        "content type of word/media/image1.png differs",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_anything_else_that_changed_fails_the_proof_and_says_where(case: str) -> None:
    source = office_file("docx", seed=4, media_bytes=5_000)
    parts = read_parts(library_rewrite(source))
    tamper, where = TAMPERING[case]
    tamper(parts)
    with pytest.raises(PackageMismatch, match=re.escape(where)):
        prove(source, write_parts(parts))


def test_a_document_s_own_custom_xml_is_content() -> None:
    """Bound content controls keep their data in customXml: not SharePoint's, so compared."""
    parts = read_parts(office_file("docx", seed=5))
    parts["customXml/item1.xml"] = b"<invoice><total>100</total></invoice>"
    source = write_parts(parts)
    stored = read_parts(library_rewrite(source))
    assert "customXml/item3.xml" in stored  # SharePoint's items came beside it
    prove(source, write_parts(stored))
    stored["customXml/item1.xml"] = b"<invoice><total>900</total></invoice>"
    with pytest.raises(PackageMismatch, match=r"customXml/item1\.xml differs"):
        prove(source, write_parts(stored))


def test_a_stored_file_that_is_not_a_package_fails() -> None:
    source = office_file("xlsx", seed=6)
    with pytest.raises(PackageMismatch, match="cannot be read"):
        prove(source, source[: len(source) // 2])
    with pytest.raises(PackageMismatch, match="not an Office Open XML package"):
        prove(source, write_parts({"a.txt": b"x"}))


def test_office_kinds_by_extension() -> None:
    assert office_kind("Budget.XLSX") == "ooxml"
    assert office_kind("slides.ppsm") == "ooxml"
    assert office_kind("old.doc") == "legacy"
    assert office_kind("notes.txt") is None
    assert office_kind("docx") is None
