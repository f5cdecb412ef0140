"""Office files that SharePoint rewrites as it stores them, and the proof that one arrived intact.

A SharePoint document library (a team site's; not OneDrive for Business) runs its document parser
on every Office file committed to it and demotes the library's columns and content type into the
file, so the stored size and quickXorHash differ from the bytes that were sent
(OneDrive/onedrive-api-docs#935; rclone/rclone#2599 and #2753; abraunegg/onedrive#2492 and #2654,
and PR #1250, where that client downloads the changed file after comparing hashes). rclone
advises `--ignore-checksum --ignore-size`; neither client proves that the content arrived.

`prove_package` does. An Office Open XML file is a ZIP package of parts (ECMA-376 Part 2, Open
Packaging Conventions). What SharePoint writes are metadata parts, and the parts that point at
them:

    the core properties part (docProps/core.xml)  written back by property demotion
    the custom properties part (docProps/custom.xml)  the library's ContentTypeId (MS-OI29500
        2.1.1724: "ContentTypeId ... the content type associated with the Windows SharePoint
        Services document library where this document belongs"), created when missing
    SharePoint's Custom XML Data Storage items (customXml/itemN.xml whose root is the
        `p:properties` of http://schemas.microsoft.com/office/2006/metadata/properties, a
        `ct:contentTypeSchema` or `FormTemplates`) with their itemPropsN.xml and rels
    [Content_Types].xml, _rels/.rels and the main part's relationships, which gain entries
        for the parts above

Every other part must be in the stored package with exactly the same bytes once decompressed
(the container is written anew: compression, order and time stamps of its entries change, so
its own bytes prove nothing). The relationship parts and [Content_Types].xml are compared for
what they say about the other parts: every relationship of a compared part (or of the package)
that does not point at a metadata part, and the content type of every compared part, must be
the same. Nothing else may be added. The extended properties (docProps/app.xml: statistics,
company) and a document's own customXml data (bound content controls) are content here, and
compared: what the sources show SharePoint writing does not include them (a forensic reading
of a document before and after a library: jjrboucher/MS-Word-Parser#22).

Legacy binary Office files (doc, xls, ppt and their template kinds) are OLE compound files; the
library writes the same properties into their property-set streams (abraunegg/onedrive#2654:
"doc/docx/xls/xlsx"; rclone/rclone#4890: a .doc stored 11,264 bytes larger). No package proof
applies to them, so sharelift does not claim one: see `docs/migrate.md`.

Memory: parts are compared a piece at a time; nothing holds a whole part.
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET  # expat >= 2.4 refuses entity bombs; none external
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

OOXML_EXTENSIONS = frozenset(
    {
        "docx", "docm", "dotx", "dotm",
        "xlsx", "xlsm", "xltx", "xltm",
        "pptx", "pptm", "potx", "potm", "ppsx", "ppsm",
    }
)  # fmt: skip
"""The Office Open XML types SharePoint's Office document parser is registered for."""

LEGACY_EXTENSIONS = frozenset({"doc", "dot", "xls", "xlt", "ppt", "pot", "pps"})
"""The binary (compound file) Office types the same parser reads and rewrites."""

_CONTENT_TYPES = "[content_types].xml"
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_RELS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_SHAREPOINT_ROOTS = frozenset(
    {
        "{http://schemas.microsoft.com/office/2006/metadata/properties}properties",
        "{http://schemas.microsoft.com/office/2006/metadata/contentType}contentTypeSchema",
        "{http://schemas.microsoft.com/sharepoint/v3/contenttype/forms}FormTemplates",
    }
)
_PROPERTY_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-package.core-properties+xml",
        "application/vnd.openxmlformats-officedocument.custom-properties+xml",
    }
)
_PIECE = 1 << 20
_READ_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    ET.ParseError,
    KeyError,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
)


def office_kind(name: str) -> str | None:
    """ "ooxml" or "legacy" for a file name SharePoint's Office parser takes, else None."""
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension in OOXML_EXTENSIONS:
        return "ooxml"
    if extension in LEGACY_EXTENSIONS:
        return "legacy"
    return None


class PackageMismatch(Exception):
    """The stored package differs from the source beyond SharePoint's metadata; the message
    (one line) says where."""


@dataclass(frozen=True)
class _Relationship:
    id: str
    type: str
    target: str
    """Resolved to a part name (lower case, no leading slash); external targets as written."""
    external: bool


class _Package:
    """One side of the comparison: a ZIP package's parts, content types and relationships."""

    def __init__(self, zf: zipfile.ZipFile, side: str) -> None:
        self.zf = zf
        self.side = side
        self.names = {
            info.filename.lstrip("/").lower(): info.filename
            for info in zf.infolist()
            if not info.filename.endswith("/")
        }
        if _CONTENT_TYPES not in self.names:
            raise PackageMismatch(f"the {side} file is not an Office Open XML package")
        root = self._xml(_CONTENT_TYPES)
        self.defaults = {
            e.get("Extension", "").lower(): e.get("ContentType", "")
            for e in root.iter(f"{_CT_NS}Default")
        }
        self.overrides = {
            e.get("PartName", "").lstrip("/").lower(): e.get("ContentType", "")
            for e in root.iter(f"{_CT_NS}Override")
        }
        self.metadata = self._metadata()

    def _xml(self, part: str) -> ET.Element:
        with self.zf.open(self.names[part]) as fh:
            return ET.parse(fh).getroot()  # noqa: S314 (see the import)

    def content_type(self, part: str) -> str:
        return self.overrides.get(part) or self.defaults.get(posixpath.splitext(part)[1][1:], "")

    def relationships(self, rels_part: str) -> list[_Relationship]:
        """The relationships of a `.rels` part, targets resolved against its source part."""
        if rels_part not in self.names:
            return []
        folder = posixpath.dirname(posixpath.dirname(rels_part))
        found = []
        for e in self._xml(rels_part).iter(f"{_RELS_NS}Relationship"):
            external = e.get("TargetMode", "Internal") == "External"
            target = e.get("Target", "")
            if not external:
                joined = target.lstrip("/") if target.startswith("/") else f"{folder}/{target}"
                target = posixpath.normpath(joined).lstrip("/").lower()
            found.append(_Relationship(e.get("Id", ""), e.get("Type", ""), target, external))
        return found

    def _metadata(self) -> frozenset[str]:
        """The parts SharePoint writes (see the module docstring), with their rels parts."""
        parts = {p for p in self.names if self.content_type(p) in _PROPERTY_TYPES}
        for rel in self.relationships("_rels/.rels"):
            if rel.type.endswith(("/metadata/core-properties", "/custom-properties")):
                parts.add(rel.target)
        for part in self.names:
            folder, leaf = posixpath.split(part)
            if folder != "customxml" or not leaf.startswith("item") or "props" in leaf:
                continue
            try:
                tag = self._xml(part).tag
            except ET.ParseError:
                continue
            if tag in _SHAREPOINT_ROOTS:
                rels = rels_part_of(part)
                parts |= {part, rels}
                parts |= {r.target for r in self.relationships(rels) if not r.external}
        return frozenset(parts | {rels_part_of(p) for p in parts})

    def compared(self) -> set[str]:
        """Its parts that must be the same on both sides: not metadata, not relationships,
        not [Content_Types].xml."""
        return {
            p
            for p in self.names
            if p not in self.metadata and p != _CONTENT_TYPES and not p.endswith(".rels")
        }

    def content_relationships(self) -> dict[str, frozenset[_Relationship]]:
        """For every relationship part whose source is not metadata: its relationships that do
        not point at metadata."""
        found: dict[str, frozenset[_Relationship]] = {}
        for part in self.names:
            if not part.endswith(".rels") or part in self.metadata:
                continue
            kept = frozenset(
                r for r in self.relationships(part) if r.external or r.target not in self.metadata
            )
            if kept:
                found[part] = kept
        return found


def rels_part_of(part: str) -> str:
    """The relationship part of `part` (`word/document.xml` -> `word/_rels/document.xml.rels`)."""
    folder, leaf = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{leaf}.rels")


def prove_package(source: IO[bytes], stored: IO[bytes]) -> None:
    """Prove that `stored` (the file as SharePoint keeps it) holds every part of `source`
    unchanged, but for the metadata SharePoint writes (see the module docstring).

    Both are seekable binary files. Returns when the proof holds; raises PackageMismatch with a
    one-line reason naming the first part that differs, or why a side cannot be read.
    """
    try:
        with zipfile.ZipFile(source) as s_zip, zipfile.ZipFile(stored) as t_zip:
            _prove(_Package(s_zip, "source"), _Package(t_zip, "stored"))
    except PackageMismatch:
        raise
    except _READ_ERRORS as exc:
        raise PackageMismatch(f"a package cannot be read ({type(exc).__name__}: {exc})") from None


def _prove(source: _Package, stored: _Package) -> None:
    wanted = source.compared()
    extra = sorted(stored.compared() - wanted)
    if extra:
        raise PackageMismatch(
            f"the stored package has a part the source has not: {stored.names[extra[0]]}"
        )
    for part in sorted(wanted):
        name = source.names[part]
        if part not in stored.names:
            raise PackageMismatch(f"the part {name} is missing from the stored package")
        if part in stored.metadata:
            raise PackageMismatch(f"the part {name} was replaced by SharePoint metadata")
        if source.content_type(part) != stored.content_type(part):
            raise PackageMismatch(f"the content type of {name} differs")
        if not _same_bytes(source.zf, name, stored.zf, stored.names[part]):
            raise PackageMismatch(f"the part {name} differs")
    s_rels, t_rels = source.content_relationships(), stored.content_relationships()
    for part in sorted(set(s_rels) | set(t_rels)):
        if s_rels.get(part, frozenset()) != t_rels.get(part, frozenset()):
            shown = source.names.get(part) or stored.names[part]
            raise PackageMismatch(f"the relationships in {shown} differ")


def _same_bytes(a: zipfile.ZipFile, a_name: str, b: zipfile.ZipFile, b_name: str) -> bool:
    """The two entries decompress to the same bytes (each checked against its CRC as read)."""
    with a.open(a_name) as fa, b.open(b_name) as fb:
        while True:
            piece = fa.read(_PIECE)
            if piece != _read_exactly(fb, len(piece)):
                return False
            if not piece:
                return True


def _read_exactly(fh: IO[bytes], size: int) -> bytes:
    """`size` bytes, or fewer at the end (0 asks whether anything is left: 1 byte then)."""
    if size == 0:
        return fh.read(1)
    chunks: list[bytes] = []
    left = size
    while left > 0:
        piece = fh.read(left)
        if not piece:
            break
        chunks.append(piece)
        left -= len(piece)
    return b"".join(chunks)
