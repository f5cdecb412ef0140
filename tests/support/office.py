"""Small Office files made by hand for tests: an OOXML package (as Word, Excel or PowerPoint
lays one out) and an OLE compound file with a DocumentSummaryInformation stream, laid out
sector by sector from [MS-CFB] and [MS-OLEPS] rather than by the emulator's own writer."""

from __future__ import annotations

import io
import struct
import uuid
import zipfile

_MAIN = {
    "docx": ("word/document.xml", "application/vnd.openxmlformats-officedocument."
             "wordprocessingml.document.main+xml"),
    "xlsx": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument."
             "spreadsheetml.sheet.main+xml"),
    "pptx": ("ppt/presentation.xml", "application/vnd.openxmlformats-officedocument."
             "presentationml.presentation.main+xml"),
}  # fmt: skip

CORE_XML = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    b'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org'
    b'/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:title>Budget'
    b'</dc:title><dc:creator>Ann Lee</dc:creator><dcterms:created xsi:type="dcterms:W3CDTF">'
    b"2024-01-02T03:04:05Z</dcterms:created></cp:coreProperties>"
)
CUSTOM_XML = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"'
    b' xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">'
    b'<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="Client">'
    b"<vt:lpwstr>ACME &amp; Co</vt:lpwstr></property></Properties>"
)


def ooxml_package(kind: str = "docx", *, custom: bool = False, seed: int = 0) -> bytes:
    """A small, valid package of `kind` (docx, xlsx, pptx) with a body part, core and app
    properties and an image; `custom` adds a docProps/custom.xml with one property."""
    main, main_type = _MAIN[kind]
    folder = main.split("/")[0]
    types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<Types xmlns="http://schemas'
        '.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType='
        '"application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
        'ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/>'
        f'<Override PartName="/{main}" ContentType="{main_type}"/>'
        '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-'
        'package.core-properties+xml"/><Override PartName="/docProps/app.xml" ContentType='
        '"application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
        + (
            '<Override PartName="/docProps/custom.xml" ContentType="application/vnd.'
            'openxmlformats-officedocument.custom-properties+xml"/>'
            if custom
            else ""
        )
        + "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<Relationships xmlns="http:'
        '//schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId3" Type='
        '"http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-'
        'properties" Target="docProps/app.xml"/><Relationship Id="rId2" Type="http://schemas.'
        'openxmlformats.org/package/2006/relationships/metadata/core-properties" Target='
        '"docProps/core.xml"/><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        f'officeDocument/2006/relationships/officeDocument" Target="{main}"/>'
        + (
            '<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/custom-properties" Target="docProps/custom.xml"/>'
            if custom
            else ""
        )
        + "</Relationships>"
    )
    main_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<Relationships xmlns="http:'
        '//schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type='
        '"http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target='
        '"media/image1.png"/></Relationships>'
    )
    body = f'<?xml version="1.0"?><doc seed="{seed}">{"text " * 200}</doc>'
    parts = {
        "[Content_Types].xml": types.encode(),
        "_rels/.rels": rels.encode(),
        main: body.encode(),
        f"{folder}/_rels/{main.split('/')[1]}.rels": main_rels.encode(),
        f"{folder}/media/image1.png": bytes(range(256)) * 64,
        "docProps/core.xml": CORE_XML,
        "docProps/app.xml": b'<?xml version="1.0"?><Properties xmlns="http://schemas.'
        b'openxmlformats.org/officeDocument/2006/extended-properties"><Pages>1</Pages>'
        b"</Properties>",
    }
    if custom:
        parts["docProps/custom.xml"] = CUSTOM_XML
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(zipfile.ZipInfo(name, (2024, 1, 2, 3, 4, 6)), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def parts_of(data: bytes) -> dict[str, bytes]:
    """Every part of a package by name, uncompressed."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name: z.read(name) for name in z.namelist()}


# --- compound files ---------------------------------------------------------------------------

_END, _FREE, _FATSECT, _NOSTREAM = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF
DOC_SUMMARY_FMTID = uuid.UUID("D5CDD502-2E9C-101B-9397-08002B2CF9AE").bytes_le


def _entry(name: str, kind: int, left: int, right: int, child: int, start: int, size: int) -> bytes:
    raw = (name + "\0").encode("utf-16-le") if name else b""
    return (
        raw.ljust(64, b"\0")
        + struct.pack("<HBBIII", len(raw), kind, 1, left, right, child)
        + b"\0" * 16  # CLSID
        + struct.pack("<I", 0)  # state bits
        + b"\0" * 16  # times
        + struct.pack("<IQ", start, size)
    )


def doc_summary_stream(company: str = "ACME") -> bytes:
    """A DocumentSummaryInformation property set with one section (code page 1252, Company)."""
    text = (company + "\0").encode("latin-1")
    text += b"\0" * (-len(text) % 4)
    props = [
        (1, struct.pack("<HHHH", 2, 0, 1252, 0)),
        (0x0F, struct.pack("<II", 0x1E, len(company) + 1) + text),
    ]
    table_size = 8 + 8 * len(props)
    table, body = b"", b""
    for pid, value in props:
        table += struct.pack("<II", pid, table_size + len(body))
        body += value
    section = struct.pack("<II", table_size + len(body), len(props)) + table + body
    header = struct.pack("<HHI16sI", 0xFFFE, 0, 0x00020006, b"\0" * 16, 1)
    return header + struct.pack("<16sI", DOC_SUMMARY_FMTID, 48) + section


def compound_file(word_document: bytes, summary: bytes | None = None) -> bytes:
    """A version-3 compound file (512-byte sectors) with a `WordDocument` stream (at least
    4,096 bytes: regular sectors) and, unless None, a `\\x05DocumentSummaryInformation`
    stream (small: in the mini stream). Layout: sector 0 the FAT, 1 the directory, 2 the mini
    FAT, 3.. the mini stream, then WordDocument."""
    assert len(word_document) >= 4096
    summary = doc_summary_stream() if summary is None else summary
    mini_count = -(-len(summary) // 64)
    mini_stream = summary.ljust(-(-len(summary) // 512) * 512, b"\0")
    mini_sectors = len(mini_stream) // 512
    word_start = 3 + mini_sectors
    word_sectors = -(-len(word_document) // 512)
    fat = [_FATSECT, _END, _END]
    fat += [*range(4, 3 + mini_sectors), _END]
    fat += [*range(word_start + 1, word_start + word_sectors), _END]
    fat += [_FREE] * (128 - len(fat))
    mini_fat = [*range(1, mini_count), _END] + [_FREE] * (128 - mini_count)
    # Directory: root (child: WordDocument), WordDocument (right: the summary), summary.
    directory = (
        _entry("Root Entry", 5, _NOSTREAM, _NOSTREAM, 1, 3, mini_count * 64)
        + _entry("WordDocument", 2, _NOSTREAM, 2, _NOSTREAM, word_start, len(word_document))
        + _entry("\x05DocumentSummaryInformation", 2, _NOSTREAM, _NOSTREAM, _NOSTREAM, 0,
                 len(summary))
        + b"\0" * 128
    )  # fmt: skip
    header = bytearray(512)
    header[:8] = bytes.fromhex("D0CF11E0A1B11AE1")
    struct.pack_into("<HHHHH", header, 24, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<IIIIIIIII", header, 40, 0, 1, 1, 0, 4096, 2, 1, _END, 0)
    struct.pack_into("<109I", header, 76, 0, *[_FREE] * 108)
    return (
        bytes(header)
        + struct.pack("<128I", *fat)
        + directory
        + struct.pack("<128I", *mini_fat)
        + mini_stream
        + word_document.ljust(word_sectors * 512, b"\0")
    )
